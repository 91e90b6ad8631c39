"""A dozen users written by hand (not drawn from any builder's pools), judged through the public API.

Each user is a one-sentence description, given to ``judge.prefer`` as the summary, and one pair
whose right answer follows from it: ten style users (one per side of length, tone, format and
code, plus caveats and a concrete example) and two pet users. Most descriptions use the styles
dataset's own wording; the replies are new. It checks what a reward model learned beyond our own
test split: does it follow a description on replies written in another hand?

It also judges the 24 user-written one-line summaries of ``wordings.handwritten_checks()`` (typed
the way people write them, on new prompts, both sides of all 9 axes and four pet users), reported
apart as ``user_written``.

    .venv/bin/python benchmarks/handwritten_users.py pets-smollm2 [BUNDLE ...]
        -> benchmarks/results/handwritten_users.json
"""
# ruff: noqa: E501  (the users below are sentences, kept one per line)
import argparse
import json
import resource
import time
from pathlib import Path

import torch

from plus_sdk import PersonalizedJudge
from plus_sdk.training.data.wordings import handwritten_checks

#: (description, prompt, a, b, the reply the user prefers)
USERS = [
 ("This user prefers concise answers that get to the point.", "How do I boil an egg?",
  "Put it in boiling water for nine minutes, then cool it in cold water.",
  "Lower the egg gently into water that is already at a rolling boil so the shell does not crack. Keep it there for about nine minutes if you like a firm yolk, or six for a jammy one. Then move it to a bowl of cold water, which stops the cooking and makes the shell easier to peel.", "a"),
 ("This user prefers detailed, thorough answers.", "Why do leaves change colour in autumn?",
  "Less daylight makes trees stop making chlorophyll.",
  "As days shorten, trees stop producing chlorophyll, the green pigment that captures light. As it breaks down, yellow and orange carotenoids that were there all along become visible, and some species also make red anthocyanins from sugars trapped in the leaf. Cool, sunny days strengthen the reds.", "b"),
 ("This user prefers a formal, professional tone.", "Can you remind me how to reply to a late invoice?",
  "Dear Ms Patel, I am writing regarding invoice 2231, which remains outstanding. I would be grateful if you could confirm a payment date at your earliest convenience.",
  "Hey! Just a quick nudge about invoice 2231, no stress, but could you let me know when it'll be paid? Cheers!", "a"),
 ("This user prefers a casual, friendly tone.", "Any tips for my first week at a new job?",
  "It is advisable to arrive punctually, to take notes during introductions and to clarify expectations with your manager.",
  "Oh nice, congrats! Show up a bit early, jot down people's names, and don't be shy about asking your boss what a good first month looks like.", "b"),
 ("This user prefers answers formatted as bullet lists.", "What should I pack for a weekend hike?",
  "- Water and snacks\n- A rain jacket\n- A map and a charged phone\n- Sturdy shoes",
  "Bring water and snacks, a rain jacket, a map with a charged phone, and sturdy shoes.", "a"),
 ("This user prefers answers written as flowing prose.", "How can I sleep better?",
  "- Keep a fixed bedtime\n- Avoid screens late\n- Keep the room cool",
  "Going to bed at the same time each night, putting screens away an hour before and keeping the room cool all help you fall asleep faster.", "b"),
 ("This user prefers answers that include a code example.", "How do I reverse a list in Python?",
  "Use slicing with a step of minus one:\n```python\nitems = [1, 2, 3]\nprint(items[::-1])\n```",
  "Use slicing with a step of minus one, or call the list's reverse method to change it in place.", "a"),
 ("This user prefers answers without code.", "How does a web browser show a page?",
  "```js\nfetch(url).then(r => r.text())\n```\nThe browser fetches the HTML, then parses and draws it.",
  "The browser asks the server for the page, reads the HTML it gets back, fetches the styles and images it mentions, and then draws the result on screen.", "b"),
 ("This user prefers answers that add safety caveats and warnings.", "How do I clean mould off a bathroom wall?",
  "Spray diluted bleach, leave it ten minutes and scrub. Wear gloves, open a window, and never mix bleach with other cleaners.",
  "Spray diluted bleach, leave it ten minutes and scrub it off.", "a"),
 ("This user prefers answers with a concrete example.", "What is compound interest?",
  "It is interest earned on both your savings and the interest already added to them.",
  "It is interest earned on interest: put 1,000 pounds away at 5 % and after one year you have 1,050, and the next year's 5 % is paid on 1,050, not 1,000.", "b"),
 ("This user likes hearing about cats, not dogs.", "Tell me a fun animal fact.",
  "Dogs can smell some illnesses before doctors can detect them.",
  "Cats have a third eyelid that helps keep their eyes moist.", "b"),
 ("This user likes hearing about dogs, not cats.", "Which pet should I read about tonight?",
  "Read about dogs: each breed was shaped for a job, from herding to rescue.",
  "Read about cats: they spend most of the day asleep and the night exploring.", "a"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description="Judge the hand-written users with each bundle.")
    parser.add_argument("bundles", nargs="+", help="bundle names or folders")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "handwritten_users.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out: dict = {}
    for name in args.bundles:
        judge = PersonalizedJudge.from_pretrained(name)
        result: dict = {}
        for label, users in (("dozen", USERS), ("user_written", handwritten_checks())):
            start = time.perf_counter()
            rows = []
            for summary, prompt, a, b, expected in users:
                pref = judge.prefer(summary, prompt, a, b)
                rows.append({"user": summary, "choice": pref.choice, "p_a": round(pref.probability, 3),
                             "right": pref.choice == expected})
            result[label] = {"right": sum(r["right"] for r in rows), "n": len(rows),
                             "seconds": round(time.perf_counter() - start, 1), "rows": rows}
            print(f"{name} {label}: {result[label]['right']} / {len(rows)} right in {result[label]['seconds']} s")
        out[Path(name).name] = result
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
