"""The fixed lists the generator speaks: wake phrases, voices, speeds, household sentences and
near misses. Changing any of them changes the output: bump generate.VERSION.
"""

from __future__ import annotations

WAKE_PHRASES: dict[str, str] = {"alexa": "alexa", "hey_jarvis": "hey jarvis"}

# espeak-ng voices ("language" or "language+variant") per wake phrase, kept because the stock
# openWakeWord 0.4.0 models score them above 0.9 at these speeds. Two espeak-ng quirks matter:
# "en-gb+VARIANT" silently ignores the variant (use "en+VARIANT"; "en" is British English), and
# the American voices say "alexa" in a way the alexa model barely scores (0.05-0.3), so American
# accents appear here only for "hey jarvis" (and in the negatives).
POSITIVE_VOICES: dict[str, tuple[str, ...]] = {
    "alexa": (
        "en",
        "en+f2",
        "en+m3",
        "en-gb-x-gbclan",
        "en+klatt",
        "en+Annie",
        "en+m7",
        "en-gb-x-rp+m6",
        "en+quincy",
        "en+m5",
        "en+max",
        "en+victor",
        "en+m1",
        "en-gb-x-rp+robert",
        "en+klatt2",
        "en+grandpa",
    ),
    "hey_jarvis": (
        "en-us",
        "en-gb-scotland",
        "en-us+f1",
        "en-029",
        "en+m6",
        "en-us+steph",
        "en-us-nyc",
        "en-us+klatt",
        "en-gb-x-gbcwmd",
        "en-us+f5",
        "en",
        "en-us+david",
        "en+max",
        "en-gb-x-rp+quincy",
        "en-us+aunty",
        "en+robert",
    ),
}
POSITIVE_SPEEDS: tuple[int, ...] = (130, 140, 150, 160, 170, 180)  # words per minute

COMMANDS: tuple[str, ...] = (
    "what's the weather tomorrow",
    "send a message to mum",
    "set a timer for ten minutes",
    "play some music in the kitchen",
    "turn off the lights in the living room",
    "what time is it in new york",
    "add milk and eggs to the shopping list",
    "call grandma on her mobile",
    "remind me to take the bins out tonight",
    "how many grams are in a pound",
    "turn the volume down a little",
    "what's on my calendar this afternoon",
    "read me the latest news headlines",
    "send a message to dad saying i'm running late",
    "wake me up at seven in the morning",
    "is it going to rain this weekend",
)

# Ordinary household speech: kitchen, phone calls, news, children, television.
HOUSEHOLD_SENTENCES: tuple[str, ...] = (
    "Can you pass me the salt, please?",
    "I think the pasta needs another five minutes.",
    "Who left the fridge door open again?",
    "We are out of bread, so I'll pick some up on the way home.",
    "Don't forget to switch the oven off when you're done.",
    "The kettle has boiled, would you like some tea?",
    "Let's have the leftover curry for lunch tomorrow.",
    "Could you empty the dishwasher before dinner?",
    "These tomatoes from the garden are really sweet this year.",
    "I burnt the toast again, sorry about the smell.",
    "There's soup in the big pot if anyone is hungry.",
    "Put the chicken in at half past five.",
    "Hello? Yes, this is she speaking.",
    "Sorry, the line is really bad, can you say that again?",
    "I'll call you back after the meeting, okay?",
    "No, I haven't heard from the plumber since Tuesday.",
    "Tell your mother I said happy birthday.",
    "Hang on, let me find a pen to write that down.",
    "The appointment is on the fourteenth at ten past nine.",
    "Yes, I can hear you now, go ahead.",
    "We'll be there around eight, depending on the traffic.",
    "Good evening, here are tonight's main stories.",
    "The council has approved plans for a new library in the town centre.",
    "Heavy rain is expected across the north of the country overnight.",
    "Shares fell sharply in early trading this morning.",
    "The final score was two goals to one after extra time.",
    "Scientists say the new vaccine could be ready by the spring.",
    "Traffic is moving slowly on the ring road after an accident.",
    "The prime minister will visit the flooded areas on Friday.",
    "Temperatures will reach twenty degrees by the weekend.",
    "Mum, can I have a biscuit?",
    "He took my crayons and won't give them back!",
    "Are we nearly there yet?",
    "I don't want to go to bed, it's still light outside.",
    "Look, I built a tower with all the blocks.",
    "Can we watch one more episode, please?",
    "My tooth is wobbly, look!",
    "Dad, where are my football boots?",
    "I finished my homework, can I go and play now?",
    "Why is the sky blue?",
    "Previously on the show, the detective found a hidden letter.",
    "Stay tuned, we'll be right back after the break.",
    "And the winner of tonight's competition is the couple from Leeds.",
    "Welcome back to the quiz, it's time for the final round.",
    "In the wild, these animals can travel hundreds of miles a day.",
    "Add two spoons of flour and stir it gently.",
    "That was a fantastic performance from both teams.",
    "The washing machine is making that noise again.",
    "Have you seen my keys? I had them a minute ago.",
    "The cat has been sleeping on the radiator all day.",
    "I need to book the car in for its service.",
    "Shall we go for a walk after lunch?",
    "The neighbours are having a party on Saturday.",
    "Can you turn that down a bit? I'm on the phone.",
    "It's freezing in here, is the heating on?",
    "Remember to water the plants while we're away.",
    "The parcel came this morning, I left it by the door.",
    "I'm going to have a shower before we go out.",
    "Who wants to come to the shops with me?",
    "The bus was late again this morning.",
    "We should paint the hallway before the winter.",
    "Your sister called while you were out.",
    "I can't find the remote control anywhere.",
    "Let's get a takeaway tonight, I'm too tired to cook.",
    "The doctor said to rest for a couple of days.",
    "Did you lock the back door?",
    "There's a film on at nine that looks quite good.",
    "I'll put the kettle on while you set the table.",
    "The garden needs mowing before it rains again.",
    "We need to leave in ten minutes or we'll miss the train.",
    "How was school today?",
    "Could you help me carry the shopping in?",
    "The baby is finally asleep, keep your voices down.",
    "That's the third time this week the internet has gone down.",
    "I love the smell of fresh coffee in the morning.",
    "Grandad is coming round for Sunday lunch.",
    "Is there any more of that apple crumble?",
    "Turn left at the roundabout and then take the second exit.",
    "My phone battery is almost dead.",
    "Let's tidy up before the guests arrive.",
)

# Near misses: words and phrases that sound like a wake phrase without being one. Each was
# rendered alone (1 s of noise before it, peak about -9 dBFS) with every NEGATIVE_VOICE at 130,
# 155 and 180 wpm and peaked below 0.3 on both stock models. Left out because the stock models
# fire on them (best score over those voices and speeds in brackets):
# on alexa: "Alexis" (1.00), "a Lexus" (1.00), "Alexei" (1.00), "Alessia" (0.90), "Lexi" (0.88),
# "flexible" (0.76), "I'll ask Sam" (0.68), "a Texan" (0.65), "a lexicon" (0.60),
# "Alex said" (0.43), "Let's order a pizza" (0.70) and "by next spring" (0.66);
# on hey_jarvis: "Hey Jervis" (1.00), "Hey Jarvie" (1.00), "the jars of pickles" (0.99),
# "Hey Charlie" (0.99), "Hey Jasper" (0.99), "Hey Jarrod" (0.95), "Hey Garvey" (0.95),
# "Hey, service" (0.95), "Hey, Travis" (0.93), "Hey, the jars" (0.91), "Hey Travis" (0.85),
# "Hey Darwin" (0.58), "Hey Harvey" (0.42) and "Harvey's car" (0.41).
NEAR_MISS_SENTENCES: tuple[str, ...] = (
    "Alexander is coming over after school.",
    "We ate at that new Alexandria restaurant.",
    "The electric bill was higher than last month.",
    "Electrical work is booked for Thursday.",
    "Electra is my favourite character in the play.",
    "She elected to stay at home.",
    "They went on a cruise to Alaska last summer.",
    "Alaska Airlines has a sale on.",
    "I'll ask her if she wants to come along.",
    "I'll text her when I get home.",
    "Ask Sarah whether the shop is still open.",
    "Just relax a bit and have a cup of tea.",
    "The galaxy documentary starts at nine.",
    "We drove through Lexington on the way.",
    "That is a complex question.",
    "We keep the bikes in the annexe.",
    "Travis, can you give me a hand with this?",
    "Hey Archie, dinner is ready.",
    "Hey Mavis, how are you keeping?",
    "Hey Marvin, the taxi is here.",
    "Hey Marcus, did you feed the fish?",
    "Hey Davis, your taxi is here.",
    "Hey there, Davis, nice to see you.",
    "Marvis from next door brought us some eggs.",
    "Jarvie plays in goal for the school team.",
    "Put the jam jars on the top shelf.",
    "The harvest festival is on Sunday.",
    "The harvest moon was huge last night.",
)

# Includes the voices that say the wake phrases best, so the near misses are real tests.
NEGATIVE_VOICES: tuple[str, ...] = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
    "en-us+f3",
    "en+m3",
    "en+f2",
    "en+f4",
    "en+f5",
    "en-us+m7",
    "en+klatt",
    "en-us+steph",
    "en+Annie",
    "en-us+david",
    "en+grandpa",
    "en+quincy",
)
NEGATIVE_SPEEDS: tuple[int, ...] = (130, 140, 150, 160, 170, 180)

NEGATIVE_TARGET_SECONDS = 720.0  # about 12 minutes of negatives in all
NEGATIVE_FILE_SECONDS = (30.0, 60.0)  # hard bounds on each negative file
NEGATIVE_PAUSE_SECONDS = (0.2, 1.2)  # silence between sentences

POSITIVE_COUNT = 48
COMMA_EVERY = 8  # per model, one positive in eight has only a comma-length pause after the wake

DEMO_VOICE = "en"
DEMO_SPEED = 150
DEMO_COMMAND = "send a message to the kitchen speaker saying dinner is ready"
