"""The sentence tables of ``wordings`` for Pets users, and the hand-written one-line user summaries.

Each Pets wording names its user's animal first (``summary_metrics.pets.animals_named``) and no animal but
the user's two. ``HANDWRITTEN`` holds user-written one-line summaries, each with a pair of new
replies that differ only on what the summary is about; see ``wordings.handwritten_checks``.
"""

from __future__ import annotations

#: Pets user type -> split -> wordings (bird and rabbit: the Pets-OOD users, birds against rabbits)
PETS_WORDINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "dog": {
        "train": (
            "likes hearing about dogs rather than cats",
            "is a dog person and wants replies about dogs",
            "lights up at anything about puppies",
            "would rather read about dogs than cats",
            "enjoys facts about canines more than about felines",
            "wants the dog sentence whenever there is a choice",
            "picks dogs over cats every time",
            "finds dogs more interesting than cats",
            "likes replies that talk about dogs",
            "is keen on dogs and their habits",
            "favours stories about dogs",
            "prefers dog content to cat content",
        ),
        "heldout": (
            "cares most about dogs, and less about cats",
            "enjoys anything featuring a puppy or a grown dog",
            "would pick a note about dogs over one about cats",
            "wants to hear about dogs above other pets",
        ),
        "typed": ("dogs!!", "more dog stuff pls", "puppies pls", "dogs > cats"),
    },
    "cat": {
        "train": (
            "likes hearing about cats rather than dogs",
            "is a cat person and wants replies about cats",
            "melts at anything about kittens",
            "would rather read about cats than dogs",
            "enjoys facts about felines more than about canines",
            "wants the cat sentence whenever there is a choice",
            "picks cats over dogs every time",
            "finds cats more charming than dogs",
            "likes replies that talk about cats",
            "is fond of cats and their quirks",
            "favours gentle stories about cats",
            "prefers cat content to dog content",
        ),
        "heldout": (
            "cares most about cats, and less about dogs",
            "enjoys anything featuring a kitten or a grown cat",
            "would pick a note about cats over one about dogs",
            "wants to hear about cats above other pets",
        ),
        "typed": ("cats!!", "cat facts pls", "kittens please", "cats > dogs"),
    },
    "bird": {
        "train": (
            "likes hearing about birds rather than rabbits",
            "is a bird person and wants replies about birds",
            "enjoys anything about parrots and budgies",
            "would rather read about birds than rabbits",
            "picks birds over rabbits every time",
            "wants the bird sentence whenever there is a choice",
            "finds birds more interesting than rabbits",
            "likes replies that talk about birds",
            "is keen on canaries, parrots and other birds",
            "favours stories about birds",
            "prefers bird content to rabbit content",
            "keeps budgies and likes hearing about them",
        ),
        "heldout": (
            "cares most about birds, and less about rabbits",
            "enjoys anything featuring a parrot or a canary",
            "would pick a note about birds over one about rabbits",
            "wants to hear about birds above other pets",
        ),
        "typed": ("birds!!", "parrots pls", "bird facts please", "birds > rabbits"),
    },
    "rabbit": {
        "train": (
            "likes hearing about rabbits rather than birds",
            "is a rabbit person and wants replies about rabbits",
            "lights up at anything about bunnies",
            "would rather read about rabbits than birds",
            "picks rabbits over birds every time",
            "wants the rabbit sentence whenever there is a choice",
            "finds rabbits more interesting than birds",
            "likes replies that talk about rabbits",
            "is fond of rabbits and their habits",
            "favours stories about bunnies",
            "prefers rabbit content to bird content",
            "keeps a rabbit and likes hearing about it",
        ),
        "heldout": (
            "cares most about rabbits, and less about birds",
            "enjoys anything featuring a bunny",
            "would pick a note about rabbits over one about birds",
            "wants to hear about rabbits above other pets",
        ),
        "typed": ("bunnies!!", "rabbit facts pls", "more bunny stuff", "rabbits > birds"),
    },
}

#: (what it is about, user-written summary, prompt, reply a, reply b, the reply the user prefers);
#: about: "axis=side" or "pets=animal". The two replies differ only on that axis (or animal).
HANDWRITTEN: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("length=concise", "Short answers please, I read everything on my phone.", "How do I descale a kettle?",
     "Fill it halfway with equal parts white vinegar and water, bring it to the boil, leave it for an hour, then "
     "rinse it out twice.",
     "Fill it halfway with equal parts white vinegar and water, bring it to the boil, leave it for an hour, then "
     "rinse it out twice. The acid in the vinegar dissolves the chalky scale that hard water leaves behind, which "
     "is also why a descaled kettle boils a little faster. If the smell bothers you, citric acid from the baking "
     "aisle does the same job, and boiling one last kettle of clean water clears any aftertaste.",
     "a"),
    ("length=detailed", "I like thorough answers that cover the reasons, not just the fact.",
     "Why does bread go stale?",
     "Bread goes stale because its starch slowly recrystallises and pushes water out, not simply because it dries.",
     "Bread goes stale because its starch slowly recrystallises and pushes water out, not simply because it dries. "
     "Fresh from the oven, the starch is swollen with water and soft. Over a few days its molecules line up again "
     "into a firmer, crystal-like structure, and that is what makes the crumb hard. It is also why bread stales "
     "fastest in the fridge, where the cold speeds the process up, and why a few minutes in a hot oven can briefly "
     "bring a loaf back.",
     "b"),
    ("tone=formal", "Please keep a formal, professional tone with me.",
     "How should I ask my landlord to fix the heating?",
     "I would suggest writing to your landlord by email, stating that the heating has not worked since Monday and "
     "requesting that a repair be arranged within the week. A written record will be useful should the matter "
     "take longer.",
     "I'd just drop your landlord an email saying the heating's been dead since Monday and asking them to get it "
     "sorted this week. Having it in writing is handy if things drag on.",
     "a"),
    ("tone=casual", "talk to me casually, like a friend would",
     "How can I get better at remembering people's names?",
     "It is helpful to repeat a person's name aloud shortly after being introduced and to associate it with a "
     "distinctive feature. Writing the names down afterwards will reinforce the memory.",
     "Try saying someone's name out loud right after you meet them and link it to something that stands out about "
     "them. Jotting the names down later really makes them stick.",
     "b"),
    ("format=bullets", "I skim, so give me bullet points.", "What do I need to open a bank account?",
     "- A passport or driving licence\n- Proof of address, such as a recent utility bill\n"
     "- Your National Insurance or tax number\n- A small first deposit, at some banks",
     "You need a passport or driving licence, proof of address such as a recent utility bill, your National "
     "Insurance or tax number and, at some banks, a small first deposit.",
     "a"),
    ("format=prose", "I prefer answers written as normal paragraphs.", "How do I keep cut flowers fresh for longer?",
     "- Trim the stems at an angle every few days.\n- Change the water every two days.\n"
     "- Strip any leaves that would sit below the waterline.\n- Keep the vase away from sunny windows and fruit.",
     "Trim the stems at an angle every few days and change the water every two days. Strip any leaves that would "
     "sit below the waterline, and keep the vase away from sunny windows and fruit.",
     "b"),
    ("code=code", "Show me code when it helps, I'm a developer.", "How can I count the words in a text file?",
     "Read the file, split its text on whitespace and count the pieces.\n\n```python\n"
     "with open(\"notes.txt\") as f:\n    print(len(f.read().split()))\n```",
     "Read the file, split its text on whitespace and count the pieces.",
     "a"),
    ("code=no-code", "No code please, I'm not a programmer.", "How does a website remember that I'm logged in?",
     "After you sign in, the server hands your browser a small token in a cookie, and the browser sends it back "
     "with every request so the site knows it is still you.\n\n```python\n"
     "response.set_cookie(\"session\", token, httponly=True, secure=True)\n```",
     "After you sign in, the server hands your browser a small token in a cookie, and the browser sends it back "
     "with every request so the site knows it is still you.",
     "b"),
    ("caveats=caveats", "I like to be warned about anything risky.", "How do I jump-start a car?",
     "Clip red to the flat battery's plus terminal and then to the good battery's plus, clip black to the good "
     "battery's minus and then to bare metal on the dead car, start the working car, wait a few minutes, then "
     "start yours.",
     "Clip red to the flat battery's plus terminal and then to the good battery's plus, clip black to the good "
     "battery's minus and then to bare metal on the dead car, start the working car, wait a few minutes, then "
     "start yours. Keep the clamps from touching each other, and never lean over a battery that is cracked or "
     "leaking, since it can give off explosive gas.",
     "b"),
    ("caveats=direct", "Be direct with me, no warnings needed.", "How do I sharpen a kitchen knife on a whetstone?",
     "Soak the stone for ten minutes, hold the blade at about fifteen degrees, and draw it across the stone in "
     "smooth strokes, ten on each side, then finish on the fine side.",
     "Soak the stone for ten minutes, hold the blade at about fifteen degrees, and draw it across the stone in "
     "smooth strokes, ten on each side, then finish on the fine side. Keep your fingers well clear of the edge "
     "and go slowly at first, because a slip on a wet stone can cause a deep cut.",
     "a"),
    ("level=beginner", "I'm a beginner, so keep the words simple.", "What is a VPN?",
     "A VPN wraps everything your computer sends in a locked envelope and passes it through another computer "
     "first, so websites and other people on your Wi-Fi cannot easily see what you are doing or where you are.",
     "A VPN establishes an encrypted tunnel between your device and a remote endpoint and routes all traffic "
     "through it, so your IP address is masked and the payload is opaque to intermediaries on the local network.",
     "a"),
    ("level=expert", "I'm an expert; technical terms are fine with me.", "What does a load balancer do?",
     "It sits in front of several servers and hands each new visitor to whichever one is least busy, so no "
     "single machine is overloaded and the site stays up if one of them fails.",
     "It terminates incoming connections and distributes requests across a pool of backends by a policy such as "
     "least-connections, with health checks that take failed nodes out of rotation.",
     "b"),
    ("example=concrete", "Give me a concrete example, that's how I learn.", "What is opportunity cost?",
     "Opportunity cost is the value of the best option you give up when you choose something. If you work an "
     "extra shift on the day of a friend's wedding, missing the wedding is the real price of that shift.",
     "Opportunity cost is the value of the best option you give up when you choose something. In general, every "
     "choice carries a hidden price in the alternatives it rules out, so a good decision weighs those too.",
     "a"),
    ("example=abstract", "I want the general principle behind things.",
     "Why do prices go up when lots of people want the same thing?",
     "When demand grows faster than supply, sellers can charge more and still sell everything. Think of tickets "
     "for a famous band's concert: the seats are limited, so resale prices climb far above the face value.",
     "When demand grows faster than supply, sellers can charge more and still sell everything. As a rule, any "
     "good in fixed supply is rationed by its price, which rises until only as many people want it as there are "
     "units to go round.",
     "b"),
    ("numbers=numbers", "Put numbers on it whenever you can.", "Is it worth insulating my loft?",
     "Usually yes: the roof is one of the main ways a house loses heat, and insulating the loft is one of the "
     "cheaper improvements you can make. It tends to pay for itself within a few years and keeps upstairs rooms "
     "noticeably warmer.",
     "Usually yes: the roof is one of the main ways a house loses heat, and insulating the loft is one of the "
     "cheaper improvements you can make. About a quarter of a home's heat can escape through an uninsulated roof, "
     "and a 270 mm layer typically pays for itself in two to four years.",
     "b"),
    ("numbers=qualitative", "No numbers please, just describe it.", "How much does sleep affect memory?",
     "A lot: while you sleep, the brain replays and stores what you learned during the day. People who sleep "
     "well after studying remember noticeably more than those who stay up, and the effect is strongest for new "
     "facts.",
     "A lot: while you sleep, the brain replays and stores what you learned during the day. In one classic "
     "study, people who slept after learning recalled 20 to 40 percent more the next day than those kept awake.",
     "a"),
    ("clarify=clarify", "Ask me a question first if my request is vague.", "Can you recommend a laptop?",
     "What will you mostly use it for, and what is your budget? Until I know, a safe general pick: a mid-range "
     "model with 16 GB of memory and a solid-state drive covers most everyday work.",
     "A safe general pick: a mid-range model with 16 GB of memory and a solid-state drive covers most everyday "
     "work.",
     "a"),
    ("clarify=immediate", "Answer right away, don't quiz me first.", "What should I cook for dinner tonight?",
     "Do you have any ingredients to use up, or anything you don't eat? If not, a vegetable stir-fry with rice "
     "is fast, cheap and hard to get wrong.",
     "A vegetable stir-fry with rice is fast, cheap and hard to get wrong.",
     "b"),
    ("pets=dog", "I love dogs way more than cats.", "Tell me one thing about a pet I might not know.",
     "Dogs follow the direction of a person's gaze and will often look where their owner looks.",
     "Cats know their owner's voice from a stranger's, even if they rarely come when called.",
     "a"),
    ("pets=cat", "cats please, not dogs", "Give me a short animal fact for my kids.",
     "Dogs cool down by panting, since they sweat only through their paw pads.",
     "Cats purr when they are content, and sometimes to calm themselves when hurt.",
     "b"),
    ("pets=bird", "Birds over rabbits for me.", "Write one sentence about an animal someone might keep at home.",
     "Rabbits can turn each ear on its own to follow two sounds at once.",
     "Parrots can copy their owner's phrases and repeat them in the same tone of voice.",
     "b"),
    ("pets=rabbit", "I'm a rabbit person rather than a bird person.", "What's an interesting pet to learn about?",
     "Rabbits thump a back foot on the ground to warn others when they sense danger.",
     "Budgies chirp loudly to warn their flock when they spot something dangerous.",
     "a"),
    ("length=concise", "keep it brief, tl;dr style", "How often should I water a cactus?",
     "About every two to three weeks in spring and summer, and barely at all in winter. Let the soil dry out "
     "completely between waterings, because cactus roots rot quickly in damp soil. A pot with drainage holes and "
     "a gritty cactus mix help the water run straight through.",
     "About every two to three weeks in spring and summer, and barely at all in winter.",
     "b"),
    ("length=detailed", "more detail please, I want the whole story", "Why is the sky blue?",
     "Air molecules scatter blue light much more than red. Sunlight holds every colour, but the tiny nitrogen "
     "and oxygen molecules of the air scatter the short wavelengths far more strongly, so blue light bounces "
     "around the whole sky and reaches our eyes from every direction. At sunset the light crosses much more air, "
     "most of the blue is scattered away on the way, and the reds and oranges are left.",
     "Air molecules scatter blue light much more than red.",
     "a"),
)
