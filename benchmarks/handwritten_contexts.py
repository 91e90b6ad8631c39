"""Twelve users written by hand, each as a context of two past choices, judged through the public API.

Unlike ``handwritten_users.py`` (a summary given directly), here the bundle's own summarizer reads
each user's two past (prompt, chosen, rejected) pairs, writes the summary, and the reward model
judges one new pair. Prompts and replies are new text, written for this check and drawn from no
builder's pools.

    .venv/bin/python benchmarks/handwritten_contexts.py general-smollm2 pets-smollm2
        -> benchmarks/results/handwritten_contexts.json
    .venv/bin/python benchmarks/handwritten_contexts.py general-smollm2 --users benchmarks/data/handwritten_contexts_fresh.json \
        --out benchmarks/results/handwritten_contexts_fresh.json      # another hand-written set, from a JSON file
"""
# ruff: noqa: E501  (the users below are sentences, kept one per line)
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch

from plus_sdk import PersonalizedJudge, PreferenceExample, UserContext

#: name -> (two past (prompt, chosen, rejected) pairs, then the new (prompt, a, b, preferred))
USERS: dict[str, tuple[list[tuple[str, str, str]], tuple[str, str, str, str]]] = {
    "short": ([
        ("How do I descale a kettle?", "Boil a mix of water and vinegar in it, then rinse twice.",
         "Limescale builds up because hard water leaves minerals behind when it boils. Fill the kettle halfway with equal parts water and white vinegar, bring it to the boil, let it sit for an hour, then pour it out and rinse it two or three times so no taste remains."),
        ("What's a good way to remember names?", "Repeat the name back once when you hear it.",
         "Memory for names is weak because we rarely attach meaning to them. When you are introduced, say the name back, link it to something about the person, and use it again before you part; reviewing it that evening helps it stick."),
    ], ("How should I store fresh basil?",
        "Stand the stems in a glass of water on the counter, like cut flowers, and keep it out of the fridge because cold turns the leaves black; change the water every day or two.",
        "Stems in a glass of water on the counter.", "b")),
    "long": ([
        ("Why does bread go stale?", "Bread goes stale mostly because its starch slowly recrystallises and pushes water out, which is called retrogradation. That is why a stale loaf can feel dry even in a sealed bag, and why a few minutes in a hot oven briefly reverses it.",
         "The starch changes and it dries out."),
        ("How do noise-cancelling headphones work?", "Small microphones on the ear cups listen to the sound around you, and the electronics play back the same wave turned upside down. The two waves cancel each other, which works best on steady low sounds like engines, and less well on sudden voices.",
         "They play an opposite sound wave."),
    ], ("Why do cats knead blankets?",
        "It is a habit from kittenhood.",
        "Kittens knead their mother to get milk flowing, and many cats keep the habit into adult life. They often do it when relaxed or about to sleep, and the scent glands in their paws also mark the blanket as theirs.", "b")),
    "bullets": ([
        ("What do I need for a picnic?", "- A blanket\n- Sandwiches and fruit\n- Water\n- A bag for rubbish",
         "Bring a blanket, some sandwiches and fruit, water, and a bag for your rubbish."),
        ("How can I focus while studying?", "- Put your phone in another room\n- Work in 25-minute blocks\n- Keep water nearby",
         "Put your phone in another room, work in 25-minute blocks, and keep water nearby."),
    ], ("How do I prepare for a job interview?",
        "Read about the company, practise answers to common questions, and prepare two questions of your own.",
        "- Read about the company\n- Practise answers to common questions\n- Prepare two questions of your own", "b")),
    "prose": ([
        ("How do I make my houseplants happy?", "Give them bright light without harsh midday sun, water only when the top of the soil is dry, and feed them lightly in spring and summer.",
         "- Bright, indirect light\n- Water when the topsoil is dry\n- Light feeding in spring and summer"),
        ("What should I check before a long drive?", "Check the tyre pressure and tread, top up the oil and screen wash, and make sure your lights all work.",
         "- Tyre pressure and tread\n- Oil and screen wash\n- All the lights"),
    ], ("How can I save on groceries?",
        "Plan your meals for the week, shop from a list, and buy store brands for staples like rice and pasta.",
        "- Plan the week's meals\n- Shop from a list\n- Buy store brands for staples", "a")),
    "code": ([
        ("How do I count words in a text file?", "Use wc on the command line:\n```bash\nwc -w notes.txt\n```",
         "Use the wc command with its word-count option on the file."),
        ("How can I sort a list of names in Python?", "Call sorted on the list:\n```python\nnames = ['Zoe', 'Adam', 'Mia']\nprint(sorted(names))\n```",
         "Call the built-in sorted function on the list, which returns a new sorted list."),
    ], ("How do I get today's date in JavaScript?",
        "Create a new Date object; it holds the current date and time, and toDateString gives a readable version.",
        "Create a new Date object:\n```js\nconst today = new Date();\nconsole.log(today.toDateString());\n```", "b")),
    "no code": ([
        ("How does a spreadsheet VLOOKUP work?", "It searches the first column of a table for a value and returns the matching entry from a column you choose in the same row.",
         "```\n=VLOOKUP(A2, Sheet2!A:C, 3, FALSE)\n```\nIt searches the first column and returns a value from another column."),
        ("How do websites remember that I'm logged in?", "After you log in, the site gives your browser a small token, and the browser sends it back with each visit so the site knows it is you.",
         "```js\ndocument.cookie = 'session=abc123';\n```\nThe site stores a session token in a cookie."),
    ], ("How does a search engine rank pages?",
        "```python\nscore = relevance * 0.7 + links * 0.3\n```\nIt weighs how well a page matches your words and how many other pages link to it.",
        "It weighs how well a page matches your words against how many trusted pages link to it, along with signals such as freshness and whether the page loads well on phones.", "b")),
    "formal": ([
        ("How do I decline a meeting?", "You might write: Thank you for the invitation; unfortunately I am unable to attend, but I would be glad to review the notes afterwards.",
         "Just say: Sorry, can't make it, send me the notes?"),
        ("How should I ask for a deadline extension?", "I would suggest: Owing to unforeseen circumstances, I would be grateful for a one-week extension to the submission date.",
         "Try: Hey, any chance I could get another week on this?"),
    ], ("How do I thank a colleague for their help?",
        "Something like: Thanks a ton for jumping in yesterday, you're a star!",
        "You might write: Thank you very much for your assistance yesterday; your support made a considerable difference.", "b")),
    "casual": ([
        ("How do I say no to extra work?", "Just be honest: Ah, I'd love to help but my plate's totally full this week!",
         "You may wish to state: I regret that my current workload does not permit me to take on additional tasks."),
        ("What's a good way to start a speech?", "Open with a quick story or a joke, it gets everyone on your side straight away!",
         "It is advisable to commence with a brief anecdote in order to establish rapport with the audience."),
    ], ("How do I invite neighbours to a barbecue?",
        "Pop a note through the door: Hey! We're firing up the grill on Saturday, come by any time after four!",
        "You may send a note stating: We would be delighted if you could join us for a barbecue on Saturday from four o'clock.", "a")),
    "caveats": ([
        ("How do I clear a blocked drain?", "Pour in baking soda then vinegar, wait, and flush with hot water. Wear gloves, and never mix this with chemical drain cleaners.",
         "Pour in baking soda then vinegar, wait, and flush with hot water."),
        ("How do I jump-start a car?", "Connect red to red, black to the dead car's bare metal, start the good car, then the other. Keep sparks away from the battery and check the cables are not touching.",
         "Connect red to red, black to bare metal on the dead car, start the good car, then the other."),
    ], ("How do I sharpen a kitchen knife?",
        "Draw the blade across a whetstone at about twenty degrees, ten strokes a side, then hone it.",
        "Draw the blade across a whetstone at about twenty degrees, ten strokes a side, then hone it. Keep your fingers behind the edge and wipe the blade away from you.", "b")),
    "numbers": ([
        ("How much water should I drink?", "Most adults need around 2 to 2.5 litres a day, about 8 glasses, more in hot weather.",
         "Most adults should drink steadily through the day, and more when it is hot."),
        ("How long should I nap?", "A 10 to 20 minute nap refreshes you without grogginess; 90 minutes covers a full sleep cycle.",
         "A short nap refreshes you, while a long one can leave you groggy."),
    ], ("How often should I replace my toothbrush?",
        "Replace it every 3 to 4 months, or sooner if the bristles splay; that is about 3 or 4 brushes a year.",
        "Replace it regularly, and sooner if the bristles start to splay.", "a")),
    "cats": ([
        ("Tell me about an animal.", "Cats can rotate their ears to pick up a sound from almost any direction.",
         "Dogs can follow a pointing finger, which even chimpanzees find hard."),
        ("Share a pet fact.", "A cat's whiskers are about as wide as its body, helping it judge gaps.",
         "A dog's nose print is as unique as a human fingerprint."),
    ], ("Give me a fun fact.",
        "Dogs sweat mainly through the pads of their paws.",
        "Cats spend around a third of their waking hours grooming.", "b")),
    "dogs": ([
        ("Tell me about an animal.", "Dogs can learn to recognise hundreds of spoken words.",
         "Cats purr at a pitch that may help their bones heal."),
        ("Share a pet fact.", "Greyhounds can run at over 60 kilometres an hour.",
         "Cats have a reflex that lets them land on their feet."),
    ], ("Give me a fun fact.",
        "Dogs dream, and puppies seem to dream more than older dogs.",
        "A group of cats is called a clowder.", "a")),
}


def read_users(path: str) -> dict[str, tuple[list[tuple[str, str, str]], tuple[str, str, str, str]]]:
    """Users from a JSON file: ``{"users": {name: {"pairs": [[prompt, chosen, rejected], ...],
    "test": [prompt, a, b, expected]}}}``."""
    users = json.loads(Path(path).read_text(encoding="utf-8"))["users"]
    return {name: ([tuple(p) for p in u["pairs"]], tuple(u["test"])) for name, u in users.items()}  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description="Judge the hand-written users, read from their contexts.")
    parser.add_argument("bundles", nargs="+", help="bundle names or folders")
    parser.add_argument("--users", default=None, help="a JSON file of users (default: the dozen in this file)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "handwritten_contexts.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    users = read_users(args.users) if args.users else USERS
    out: dict = {"loadavg_before": os.getloadavg(), "users": args.users or "benchmarks/handwritten_contexts.py"}
    for name in args.bundles:
        judge = PersonalizedJudge.from_pretrained(name, quiet=True)
        start = time.perf_counter()
        rows = []
        for user, (pairs, (prompt, a, b, expected)) in users.items():
            context = UserContext(user_id=user.replace(" ", "-"), examples=[
                PreferenceExample(prompt=p, chosen=c, rejected=r) for p, c, r in pairs])
            pref = judge.prefer(context, prompt, a, b)
            rows.append({"user": user, "summary": pref.summary.text if pref.summary else None,
                         "choice": pref.choice, "p_a": round(pref.probability, 3), "right": pref.choice == expected})
        out[Path(name).name] = {"right": sum(r["right"] for r in rows), "n": len(rows),
                                "seconds": round(time.perf_counter() - start, 1), "rows": rows}
        print(f"{name}: {out[Path(name).name]['right']} / {len(rows)} right in {out[Path(name).name]['seconds']} s")
        for row in rows:
            print(f"  {'✓' if row['right'] else '✗'} {row['user']}: {row['summary']}")
    out["loadavg_after"] = os.getloadavg()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    Path(args.out).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
