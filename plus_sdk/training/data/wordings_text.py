"""The sentence tables of ``wordings``: hand-written descriptions of styles sides and Pets users.

Styles and Pets wordings in ``train`` and ``heldout`` are third-person verb phrases ("wants replies
kept short") that ``wordings.describe_*`` put after a subject ("This user ...") or use as a note
("Wants replies kept short."). ``typed`` ones are lowercase fragments the way a person types them
into a text box. Each styles wording names its side by ``styles.names_side`` and contains no
keyword of any other axis, so two wordings can be joined without one hiding the other's side.
Each Pets wording names its user's animal first (``pets_metrics.animals_named``) and no animal
but the user's two.

``HANDWRITTEN`` holds user-written one-line summaries, each with a pair of new replies that
differ only on what the summary is about; see ``wordings.handwritten_checks``.
"""

from __future__ import annotations

#: (axis, side) -> split -> wordings
STYLE_WORDINGS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("length", "concise"): {
        "train": (
            "wants replies kept short",
            "likes answers that get to the point and stop",
            "gets annoyed by padding and would rather read a brief reply",
            "prefers concise answers with nothing extra",
            "is happiest with a short reply",
            "values succinct replies that respect their time",
            "wants the answer in a sentence or two, kept brief",
            "skims, so shorter replies work better for them",
            "dislikes rambling and wants things kept concise",
            "would rather get the gist in a few brief lines",
            "is after quick, to the point answers",
            "finds wordy replies tiring and wants them short",
        ),
        "heldout": (
            "wants the bare answer, short and clean",
            "expects replies to stay brief",
            "has little patience for filler and likes concise replies",
            "likes a reply trimmed to the essentials, short enough to read at a glance",
        ),
        "typed": ("short answers pls", "keep it brief", "tldr, short version only", "concise please",
                  "shorter replies!!"),
    },
    ("length", "detailed"): {
        "train": (
            "likes when answers run long and cover the details",
            "wants thorough answers that leave nothing out",
            "enjoys in-depth replies with background and reasoning",
            "would rather read a long reply than a thin one",
            "likes comprehensive answers that walk through each step",
            "values detailed replies that cover the why as well as the how",
            "is happy with a lengthy reply as long as it adds depth",
            "wants the full picture, covered in depth",
            "feels let down by thin replies and wants them elaborate",
            "likes answers that go into detail",
            "wants replies that are thorough rather than quick",
            "wants every relevant detail spelled out",
        ),
        "heldout": (
            "appreciates a longer answer that digs into the background",
            "likes replies to be comprehensive, even if they take a while to read",
            "is glad when a reply goes in depth instead of skimming the surface",
            "wants extended, detailed replies with the reasoning shown",
        ),
        "typed": ("more detail pls", "longer answers", "go in depth", "be thorough!!", "full details please"),
    },
    ("tone", "formal"): {
        "train": (
            "wants replies written in a formal register",
            "likes a professional voice, the way a colleague would write",
            "expects polite, businesslike wording",
            "is put off by slang and wants a formal tone",
            "wants answers that read like a professional letter",
            "likes a courteous, formal style without jokes",
            "prefers polite, measured language",
            "would rather be addressed formally than chummily",
            "wants a tone fit for a professional setting",
            "finds emoji and banter out of place and likes things formal",
            "values a polished, professional manner",
            "likes replies phrased politely and with some reserve",
        ),
        "heldout": (
            "wants the reply to sound formal, like an office memo",
            "responds best to a reserved, professional register",
            "would like the assistant to stay polite and formal",
            "prefers a respectful, formal way of writing",
        ),
        "typed": ("formal pls", "keep it professional", "no slang, be polite", "professional tone please"),
    },
    ("tone", "casual"): {
        "train": (
            "wants replies that sound casual, like a friend texting",
            "enjoys a chatty style with a bit of warmth",
            "prefers relaxed wording over stiff language",
            "likes it when the assistant talks in an informal way",
            "finds stiff replies off-putting and wants them friendly",
            "wants a laid-back, casual voice",
            "responds well to a friendly, warm manner",
            "likes answers with a relaxed, human feel",
            "would rather be spoken to casually, like a mate",
            "enjoys a chatty reply that feels like a conversation",
            "likes informal language and the odd joke",
            "wants the tone kept friendly and light",
        ),
        "heldout": (
            "prefers a casual register, contractions and all",
            "likes replies that feel friendly rather than stiff",
            "warms to a relaxed, chatty voice",
            "wants the assistant to sound informal and approachable",
        ),
        "typed": ("casual pls", "talk to me like a friend, casual", "be chatty!", "relaxed tone pls",
                  "friendly vibes"),
    },
    ("format", "bullets"): {
        "train": (
            "likes answers broken into bullet points",
            "scans replies and wants them as a list",
            "prefers a list of items over a block of text",
            "finds bullets quicker to scan than running text",
            "likes each step on its own line, as a list",
            "wants the key points set out one per line",
            "takes in bulleted answers best",
            "likes replies organised into lists",
            "wants structure: bullets rather than a wall of text",
            "prefers answers as bulleted steps",
            "likes a checklist layout",
            "wants the main points listed out",
        ),
        "heldout": (
            "likes to see the answer split into bullets",
            "prefers itemised replies, each point on a bullet",
            "is happiest with a tidy list instead of running text",
            "wants information chunked into bullet points",
        ),
        "typed": ("bullet points pls", "as a list", "bullets!!", "list form please"),
    },
    ("format", "prose"): {
        "train": (
            "likes answers written as flowing prose",
            "prefers a paragraph or two of connected text",
            "wants replies in full paragraphs that read naturally",
            "finds fragmented layouts choppy and likes prose",
            "enjoys flowing answers that read like an essay",
            "wants connected sentences in paragraph form",
            "likes the reasoning to run on in prose, not in fragments",
            "prefers well-written paragraphs to itemised layouts",
            "would rather read prose than scan headings",
            "likes a smooth, flowing reply",
            "wants answers told as a paragraph",
            "is happier with prose that links ideas together",
        ),
        "heldout": (
            "likes replies in continuous prose",
            "prefers an answer shaped as a single flowing paragraph",
            "wants the text in paragraphs, the way a letter is written",
            "enjoys prose that carries the reader from one idea to the next",
        ),
        "typed": ("paragraphs pls", "write it as prose", "full paragraphs please", "flowing text not fragments"),
    },
    ("code", "code"): {
        "train": (
            "wants a code sample in the answer",
            "likes to see a snippet they can run",
            "prefers answers that show the code",
            "finds code clearer than words alone",
            "wants a working snippet whenever it fits",
            "likes replies that include a small script",
            "would rather read code than a summary of it",
            "expects a code block with each answer",
            "is a programmer who wants to see the code",
            "likes a runnable snippet to copy",
            "wants the answer backed by actual code",
            "values a few lines of code over words",
        ),
        "heldout": (
            "learns best from reading code",
            "likes answers that end with a snippet to try",
            "wants to be shown the code, not just told about it",
            "prefers replies that carry a script or code fragment",
        ),
        "typed": ("show me the code", "code pls", "snippet?", "give me code"),
    },
    ("code", "no-code"): {
        "train": (
            "wants answers without code",
            "doesn't program, so wants no code in replies",
            "likes replies that are code-free",
            "prefers an answer in words, without any code",
            "is not a programmer and wants no code",
            "would rather skip the code and read the idea in words",
            "gets lost in programming syntax and wants no code",
            "wants the concept described without code",
            "likes explanations with no code at all",
            "prefers code-free answers in ordinary words",
            "wants the steps in words, no code blocks",
            "is happier when a reply has no code in it",
        ),
        "heldout": (
            "wants replies kept code-free",
            "would like the idea in words, without code",
            "needs answers with no code, since they never program",
            "prefers answers that get the idea across without any code",
        ),
        "typed": ("no code", "no code pls", "skip the code", "code-free please"),
    },
    ("caveats", "caveats"): {
        "train": (
            "wants to be warned about risks",
            "likes answers that flag safety concerns",
            "appreciates a note of caution where something could go wrong",
            "wants the caveats spelled out",
            "prefers replies that mention what could be risky",
            "values warnings about possible harm",
            "likes the assistant to be careful and name the dangers",
            "wants safety notes added to practical advice",
            "feels reassured when a reply includes a warning",
            "expects the downsides and risks to be named",
            "likes answers that err on the side of caution",
            "wants any risk mentioned up front",
        ),
        "heldout": (
            "is glad of a caveat or two at the end",
            "prefers advice that comes with safety warnings",
            "wants to hear what to be careful about",
            "likes replies that add cautionary notes",
        ),
        "typed": ("warn me about risks", "safety first pls", "include caveats", "tell me if its risky",
                  "any warnings?"),
    },
    ("caveats", "direct"): {
        "train": (
            "wants direct answers without warnings",
            "dislikes hedging and prefers a direct reply",
            "finds disclaimers tiresome and wants answers that are direct",
            "wants the advice as it is, no warnings",
            "prefers replies with no caveats tacked on",
            "considers themselves an adult and wants direct advice",
            "gets annoyed by hedging and likes things direct",
            "wants a direct answer with no lecture attached",
            "likes it when the assistant is blunt and direct",
            "would rather not be warned, so direct answers suit them",
            "prefers a direct style that trusts the reader",
            "wants no warnings padding out the reply",
        ),
        "heldout": (
            "likes things said without caveats",
            "prefers frank, direct replies",
            "wants answers with no warnings or disclaimers",
            "values a direct reply over a hedged one",
        ),
        "typed": ("just be direct", "no warnings pls", "skip the disclaimers, be direct", "direct answers only",
                  "no caveats"),
    },
    ("level", "beginner"): {
        "train": (
            "is new to the topic and wants things kept simple",
            "likes plain words and no jargon",
            "wants answers pitched at a beginner",
            "prefers easy, everyday words",
            "learns best when ideas are made simple",
            "is a novice and needs the basics covered",
            "wants every term defined in plain words",
            "likes answers simple enough for a newcomer",
            "prefers a gentle, easy-to-follow walk-through",
            "wants the non-technical version",
            "appreciates answers aimed at someone starting out, in simple terms",
            "likes a plain account, as if told to a friend",
        ),
        "heldout": (
            "wants it told the way you would tell a beginner",
            "prefers simple terms and a slow pace",
            "likes answers without jargon, easy to follow",
            "is a beginner here and wants the basics first",
        ),
        "typed": ("explain like im new to this", "simple words pls", "im a beginner", "keep it simple",
                  "no jargon pls"),
    },
    ("level", "expert"): {
        "train": (
            "wants expert-level answers with the right terminology",
            "is an expert and does not need the basics",
            "prefers technical answers that assume background knowledge",
            "is comfortable with jargon and wants it used",
            "wants the advanced version, not an introduction",
            "skips intros and wants technical precision",
            "finds hand-holding tedious and wants advanced answers",
            "likes replies written for an expert audience",
            "prefers dense, technical language",
            "knows the field well and wants expert-level replies",
            "wants the proper technical terms rather than analogies",
            "likes answers pitched at an advanced reader",
        ),
        "heldout": (
            "prefers precise technical wording",
            "wants to be addressed as a fellow expert",
            "is fine with jargon and dense terminology",
            "would like answers at an advanced level, with no hand-holding",
        ),
        "typed": ("im an expert, skip basics", "technical answers pls", "advanced stuff only", "jargon is fine"),
    },
    ("example", "concrete"): {
        "train": (
            "likes a concrete example in every answer",
            "understands things best through examples",
            "wants a specific case to anchor the idea",
            "finds worked examples more useful than theory",
            "prefers answers that show an instance of the idea",
            "wants something concrete to hold on to",
            "likes it when the reply illustrates the point with an example",
            "wants specific cases, not vague talk",
            "needs a real example before an idea clicks",
            "likes replies grounded in concrete situations",
            "prefers an example first and the rule after",
            "finds a specific illustration the most helpful part",
        ),
        "heldout": (
            "wants to see the idea applied to a specific case",
            "likes a concrete scenario to make things clear",
            "learns from examples far more than from definitions",
            "wants at least one concrete example per answer",
        ),
        "typed": ("give me an example", "examples pls", "concrete example?", "show a specific case"),
    },
    ("example", "abstract"): {
        "train": (
            "prefers general principles to worked cases",
            "likes the underlying principle stated clearly",
            "wants the general rule rather than one case",
            "thinks in abstract terms and likes answers that do too",
            "values the conceptual picture over anecdotes",
            "prefers answers framed as general guidance",
            "likes ideas stated at the level of principles",
            "wants the concept itself, kept abstract",
            "finds anecdotes distracting and wants the general point",
            "likes a conceptual overview more than particulars",
            "is after the principle behind the advice",
            "prefers the general case to any single illustration",
        ),
        "heldout": (
            "wants answers that stay at the level of general ideas",
            "enjoys a conceptual, high-level answer",
            "likes abstract reasoning more than case studies",
            "wants the governing principle rather than a worked case",
        ),
        "typed": ("just the general idea", "principles not cases", "keep it abstract", "general rule pls"),
    },
    ("numbers", "numbers"): {
        "train": (
            "likes answers backed by numbers",
            "wants figures and measurements where they exist",
            "trusts replies more when they cite data",
            "prefers quantitative answers",
            "likes statistics to support a claim",
            "wants actual numbers, not vague words",
            "finds that a figure or two makes advice more convincing",
            "wants amounts, rates and other numeric facts",
            "values hard data in a reply",
            "prefers answers that put a number on things",
            "likes precise figures over rough impressions",
            "expects claims to come with numbers",
        ),
        "heldout": (
            "wants the statistics, not just impressions",
            "likes replies with percentages and other figures",
            "is persuaded by data more than by anecdotes",
            "wants numbers attached to every estimate",
        ),
        "typed": ("numbers pls", "give me figures", "any data on this?", "statistics please"),
    },
    ("numbers", "qualitative"): {
        "train": (
            "wants a qualitative sense of things",
            "likes answers that paint a picture in words, no numbers",
            "wants the idea in words, with no numbers",
            "would rather have a qualitative feel than precise measurements",
            "prefers replies without numbers",
            "likes a qualitative comparison over a table of values",
            "wants answers kept qualitative",
            "is put off by percentages and wants no numbers",
            "likes a qualitative, human account",
            "wants the gist in qualitative terms",
            "prefers rough comparisons without numbers",
            "values qualitative judgement over measurement",
        ),
        "heldout": (
            "likes the answer told in words, without figures",
            "wants a qualitative answer, free of metrics",
            "reads answers better without numbers in the way",
            "prefers qualitative wording to precise amounts",
        ),
        "typed": ("no numbers pls", "without numbers please", "qualitative is fine", "describe it, no numbers"),
    },
    ("clarify", "clarify"): {
        "train": (
            "likes the assistant to ask a clarifying question first",
            "wants to be asked what they mean before an answer",
            "appreciates a question back when the request is vague",
            "prefers replies that clarify the goal before answering",
            "likes being asked about their situation first",
            "wants the assistant to check the context with a question",
            "values a quick clarification before the answer",
            "is glad when the reply opens with a question",
            "prefers that the assistant asks before it assumes",
            "likes a follow-up question that narrows the request",
            "wants ambiguity cleared up with a question first",
            "would rather be asked than guessed about",
        ),
        "heldout": (
            "likes replies that begin by asking what they need",
            "wants the assistant to clarify before it commits to an answer",
            "prefers a question or two up front",
            "is happier when the assistant first asks about the goal",
        ),
        "typed": ("ask me first", "ask before answering pls", "clarify first", "questions first are ok"),
    },
    ("clarify", "immediate"): {
        "train": (
            "wants an immediate answer, no questions back",
            "likes the assistant to get straight to the answer",
            "dislikes being quizzed and wants the reply right away",
            "prefers an answer at once, with sensible assumptions",
            "wants the assistant to answer right away rather than probe",
            "finds follow-up queries annoying and wants an immediate reply",
            "likes replies that start answering straight off",
            "would rather the assistant guess than delay, so immediate replies suit them",
            "wants the answer straight away",
            "prefers to be answered immediately",
            "likes the reply to begin with the answer right away",
            "expects an immediate response, without asking anything back",
        ),
        "heldout": (
            "wants the answer given straight, not preceded by queries",
            "likes an immediate reply that assumes the usual case",
            "prefers the assistant to dive in right away",
            "wants the reply to get on with it at once",
        ),
        "typed": ("just answer straight away", "answer right away pls", "no questions, just answer", "straight to it"),
    },
}

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
