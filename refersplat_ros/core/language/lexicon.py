"""Words the language layer knows: colours, sizes, relations, ordinals, sides, objects.

English as people use it to point at things on a table, not any one annotator's templates: the
relation phrases are the usual spatial prepositions and their multi-word forms, the object
synonyms are everyday names of household and tabletop things, and colours include the common
shade names. Words outside these lists are still read: an unknown noun is compared with the
scene's object names by the sentence encoder (``ground.py``), and an unknown modifier ("ceramic",
"with the blue label") can still tell tied candidates apart through the similarity of the whole
query to each object's known sentences.

One definition of each word class, used by the parser (``parse.py``) and the grounding.
"""
from typing import Dict, FrozenSet, Tuple

# --------------------------------------------------------------------------- colours
#: Basic colour -> sRGB prototype in [0, 1] (for naming the measured colour of an object).
COLOUR_PROTOTYPES: Dict[str, Tuple[float, float, float]] = {
    'red': (0.80, 0.10, 0.10), 'orange': (0.95, 0.50, 0.08), 'yellow': (0.95, 0.85, 0.15),
    'green': (0.18, 0.62, 0.22), 'cyan': (0.10, 0.72, 0.78), 'blue': (0.14, 0.30, 0.85),
    'purple': (0.50, 0.20, 0.70), 'pink': (0.95, 0.55, 0.72), 'brown': (0.50, 0.32, 0.16),
    'white': (0.93, 0.93, 0.93), 'grey': (0.50, 0.50, 0.50), 'black': (0.08, 0.08, 0.09),
}
#: Colour word -> basic colour.
COLOUR_WORDS: Dict[str, str] = {
    **{c: c for c in COLOUR_PROTOTYPES},
    'crimson': 'red', 'scarlet': 'red', 'maroon': 'red', 'burgundy': 'red', 'ruby': 'red',
    'cherry': 'red', 'reddish': 'red',
    'amber': 'orange', 'tangerine': 'orange', 'orangey': 'orange', 'orangish': 'orange',
    'gold': 'yellow', 'golden': 'yellow', 'mustard': 'yellow', 'yellowish': 'yellow',
    'lemon': 'yellow',
    'lime': 'green', 'olive': 'green', 'emerald': 'green', 'mint': 'green', 'greenish': 'green',
    'teal': 'cyan', 'turquoise': 'cyan', 'aqua': 'cyan', 'aquamarine': 'cyan',
    'navy': 'blue', 'azure': 'blue', 'cobalt': 'blue', 'sapphire': 'blue', 'bluish': 'blue',
    'blueish': 'blue', 'indigo': 'blue',
    'violet': 'purple', 'lilac': 'purple', 'lavender': 'purple', 'magenta': 'purple',
    'mauve': 'purple', 'plum': 'purple', 'purplish': 'purple',
    'rose': 'pink', 'salmon': 'pink', 'pinkish': 'pink', 'fuchsia': 'pink',
    'tan': 'brown', 'beige': 'brown', 'chocolate': 'brown', 'wooden': 'brown',
    'brownish': 'brown', 'bronze': 'brown',
    'ivory': 'white', 'cream': 'white', 'snow': 'white', 'whitish': 'white',
    'gray': 'grey', 'silver': 'grey', 'grayish': 'grey', 'greyish': 'grey', 'charcoal': 'grey',
    'ebony': 'black', 'jet': 'black', 'blackish': 'black',
}
#: Colour words whose shades straddle two basic colours: they answer to either ("the magenta
#: plate" is the pink one or the purple one, whichever is here). Read as 'pink|purple'.
COLOUR_SPANS: Dict[str, Tuple[str, ...]] = {
    'magenta': ('purple', 'pink'), 'fuchsia': ('pink', 'purple'), 'mauve': ('purple', 'pink'),
    'lilac': ('purple', 'pink'), 'lavender': ('purple', 'pink'), 'violet': ('purple', 'blue'),
    'indigo': ('blue', 'purple'), 'maroon': ('red', 'brown'), 'burgundy': ('red', 'purple'),
    'plum': ('purple', 'red'), 'salmon': ('pink', 'orange'), 'coral': ('pink', 'orange'),
    'amber': ('orange', 'yellow'), 'gold': ('yellow', 'orange'), 'golden': ('yellow', 'orange'),
    'mustard': ('yellow', 'brown'), 'olive': ('green', 'brown'), 'lime': ('green', 'yellow'),
    'beige': ('brown', 'white'), 'tan': ('brown', 'orange'), 'khaki': ('brown', 'green'),
    'cream': ('white', 'yellow'), 'ivory': ('white', 'yellow'), 'silver': ('grey', 'white'),
    'charcoal': ('grey', 'black'), 'navy': ('blue', 'black'),
}


def colour_of(word: str) -> str:
    """Return what a colour word names: a basic colour, or 'a|b' for a shade between two."""
    span = COLOUR_SPANS.get(word)
    return '|'.join(span) if span else COLOUR_WORDS[word]


#: The basic colour terms of English (Berlin and Kay): one is not called by another. The
#: prototypes' other colours (cyan) answer to their neighbours ("light blue" for cyan).
BASIC_COLOURS = frozenset({'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink',
                           'brown', 'white', 'grey', 'black'})
#: Colour words that are also things ("the orange next to the kettle").
COLOUR_NOUNS = frozenset({'orange', 'lemon', 'lime', 'cherry', 'plum', 'chocolate', 'cream',
                          'gold', 'silver', 'olive', 'mint', 'salmon', 'rose', 'tangerine'})
#: Colour pairs people use for one another (light blue for cyan, dark red for maroon, ...).
#: Not cyan for green: "the green bottle" is not the turquoise one.
COLOUR_NEIGHBOURS: FrozenSet[FrozenSet[str]] = frozenset(frozenset(p) for p in (
    ('cyan', 'blue'), ('orange', 'red'), ('orange', 'yellow'),
    ('pink', 'purple'), ('pink', 'red'), ('brown', 'orange'), ('grey', 'white'),
    ('grey', 'black'), ('purple', 'blue')))

# --------------------------------------------------------------------------- sizes
#: Size word -> (dimension, direction): 'volume'|'height'|'length', +1 = larger, -1 = smaller.
SIZE_WORDS: Dict[str, Tuple[str, int]] = {
    'small': ('volume', -1), 'little': ('volume', -1), 'tiny': ('volume', -1),
    'mini': ('volume', -1), 'smaller': ('volume', -1), 'petite': ('volume', -1),
    'miniature': ('volume', -1), 'compact': ('volume', -1), 'wee': ('volume', -1),
    'large': ('volume', 1), 'big': ('volume', 1), 'huge': ('volume', 1), 'bigger': ('volume', 1),
    'larger': ('volume', 1), 'giant': ('volume', 1), 'massive': ('volume', 1),
    'enormous': ('volume', 1), 'oversized': ('volume', 1), 'jumbo': ('volume', 1),
    'tall': ('height', 1), 'taller': ('height', 1), 'high': ('height', 1),
    'short': ('height', -1), 'shorter': ('height', -1), 'low': ('height', -1),
    'long': ('length', 1), 'longer': ('length', 1),
    'wide': ('length', 1), 'wider': ('length', 1), 'broad': ('length', 1),
    'narrow': ('length', -1), 'narrower': ('length', -1),
}
#: Comparatives: "the taller of the two", "the bigger one" pick the extreme of the candidates
#: (as the superlative does) unless "than" follows (then they are relations).
COMPARATIVES = frozenset({'bigger', 'larger', 'smaller', 'taller', 'shorter', 'longer', 'wider',
                          'narrower'})
#: Superlative -> (dimension, direction) as SIZE_WORDS; 'top' ranks by height of the top.
SUPERLATIVES: Dict[str, Tuple[str, int]] = {
    'smallest': ('volume', -1), 'tiniest': ('volume', -1), 'littlest': ('volume', -1),
    'largest': ('volume', 1), 'biggest': ('volume', 1), 'hugest': ('volume', 1),
    'tallest': ('height', 1), 'shortest': ('height', -1), 'longest': ('length', 1),
    'widest': ('length', 1), 'narrowest': ('length', -1),
    'highest': ('top', 1), 'lowest': ('top', -1), 'topmost': ('top', 1),
    'bottommost': ('top', -1), 'uppermost': ('top', 1),
}

# --------------------------------------------------------------------------- sides, ordinals
#: Side word -> canonical side ('left' | 'right' | 'front' | 'back').
SIDE_WORDS: Dict[str, str] = {
    'left': 'left', 'lefthand': 'left', 'right': 'right', 'righthand': 'right',
    'front': 'front', 'near': 'front', 'back': 'back', 'rear': 'back', 'far': 'back',
    'forward': 'front', 'forwards': 'front', 'backward': 'back', 'backwards': 'back',
}
#: Single-word extremes -> side ("the leftmost cup" = first from the left).
EXTREMES: Dict[str, str] = {
    'leftmost': 'left', 'rightmost': 'right', 'frontmost': 'front', 'foremost': 'front',
    'rearmost': 'back', 'backmost': 'back', 'hindmost': 'back', 'furthermost': 'back',
}
OPPOSITE = {'left': 'right', 'right': 'left', 'front': 'back', 'back': 'front'}
ORDINALS: Dict[str, int] = {
    'first': 1, 'second': 2, 'third': 3, 'fourth': 4, 'fifth': 5, 'sixth': 6, 'seventh': 7,
    'eighth': 8, 'ninth': 9, 'tenth': 10, '1st': 1, '2nd': 2, '3rd': 3, '4th': 4, '5th': 5,
    '6th': 6, '7th': 7, '8th': 8, '9th': 9, '10th': 10,
}
#: Counted from the far end: 'last' = 1 from the opposite side, 'penultimate' = 2.
FROM_END: Dict[str, int] = {'last': 1, 'penultimate': 2, 'final': 1, 'antepenultimate': 3}
MIDDLE_WORDS = frozenset({'middle', 'center', 'centre', 'central', 'centermost',
                          'centremost', 'median'})
#: How many a count word says ("the two red cans", "both cans", "a pair of cans").
COUNT_WORDS: Dict[str, int] = {
    'two': 2, 'three': 3, 'four': 4, 'five': 5, 'six': 6, 'seven': 7, 'eight': 8, 'nine': 9,
    'ten': 10, 'both': 2, 'pair': 2,
}
#: Words that make the target every object the phrase names ("all the cans", "every book",
#: "each bowl"); how many, when the word says it, is in ``COUNT_WORDS`` ("both").
QUANTIFIERS = frozenset({'all', 'every', 'each', 'both', 'everything'})
#: Count words, read and skipped in a noun phrase ("the two red cans").
NUMBERS = frozenset({'one', 'couple'}) | frozenset(COUNT_WORDS)

# --------------------------------------------------------------------------- relations
#: Operator -> the phrases (word sequences) that name it. Longer phrases win; the side forms
#: are matched by the parser before these (e.g. "to the left of", "on the far left side of").
RELATION_WORDS: Dict[str, Tuple[str, ...]] = {
    'in_front_of': (
        'in front of', 'infront of', 'before', 'ahead of', 'in the front of',
        'on the near side of', 'on the front side of', 'on the close side of', 'nearer to me than',
        'closer to me than', 'closer to the camera than', 'nearer the camera than',
        'on this side of', 'this side of', 'on our side of', 'on my side of',
        'in the foreground of', 'out in front of'),
    'behind': (
        'behind', 'in back of', 'in the back of', 'at the back of', 'beyond', 'on the far side of',
        'on the back side of', 'on the other side of', 'back of', 'farther away than',
        'further away than', 'hidden behind', 'at the rear of', 'to the rear of',
        'on the rear side of'),
    'next_to': (
        'next to', 'beside', 'by', 'near', 'nearby', 'close to', 'adjacent to', 'alongside',
        'along side', 'neighbouring', 'neighboring', 'touching', 'against', 'at the side of',
        'by the side of', 'right next to', 'just next to', 'close by', 'close beside', 'right by',
        'right beside', 'in contact with', 'bordering', 'abutting', 'side by side with',
        'beside of', 'near to', 'next by', 'hugging'),
    'on_top_of': (
        'on top of', 'on', 'onto', 'upon', 'atop', 'on the top of', 'sitting on', 'sitting upon',
        'resting on', 'resting upon', 'standing on', 'placed on', 'lying on', 'laying on',
        'set on', 'perched on', 'stacked on', 'sitting on top of', 'balanced on', 'supported by',
        'carried by', 'held by', 'in', 'inside', 'into', 'off', 'off of', 'from off'),
    'above': ('above', 'over', 'higher than', 'up from', 'overhead of'),
    'under': (
        'under', 'underneath', 'beneath', 'below', 'supporting', 'holding up', 'carrying',
        'holding', 'bearing', 'lower than', 'down from', 'at the bottom of'),
    'nearest_to': (
        'closest to', 'nearest to', 'nearest', 'closest', 'nearer to', 'closer to',
        'at the shortest distance from', 'the shortest distance from', 'least distant from',
        'least far from', 'most near to', 'the closest to', 'the nearest to', 'nearest of all to',
        'closest of all to', 'at the smallest distance from', 'a short distance from',
        'the least distance from', 'with the least distance to'),
    'farthest_from': (
        'farthest from', 'furthest from', 'most distant from', 'farthest away from',
        'furthest away from', 'far from', 'far away from', 'away from', 'the farthest from',
        'the furthest from', 'at the greatest distance from', 'at the longest distance from',
        'the most distant from', 'farther from', 'further from', 'most far from', 'distant from',
        'the greatest distance from', 'remote from', 'most remote from', 'farther away from',
        'further away from', 'more distant from', 'further off from', 'farther off from'),
    'between': (
        'between', 'in between', 'betwixt', 'flanked by', 'sandwiched between', 'in the middle of',
        'midway between', 'halfway between', 'amid', 'amidst', 'among', 'between both',
        'in the middle between', 'placed between', 'situated between', 'in the gap between',
        'in the space between', 'somewhere between', 'in the centre between',
        'in the center between', 'sitting between', 'standing between', 'wedged between',
        'squeezed between', 'located between', 'positioned between'),
    'at_edge_of': (
        'at the edge of', 'on the edge of', 'near the edge of', 'by the edge of',
        'along the edge of', 'at the end of', 'on the end of', 'near the end of',
        'at the corner of', 'in the corner of', 'on the corner of', 'near the corner of',
        'at the far end of', 'on the far end of', 'at the rim of', 'on the rim of',
        'at the border of'),
}
#: Relation phrase (word sequence) -> operator.
RELATION_PHRASES: Dict[Tuple[str, ...], str] = {
    tuple(phrase.split()): op for op, phrases in RELATION_WORDS.items() for phrase in phrases}
#: The side forms, built by the parser: "(to|on|at) (the) [far] SIDE [hand] [side] of".
SIDE_RELATION = {'left': 'left_of', 'right': 'right_of', 'front': 'in_front_of',
                 'back': 'behind'}
#: Operators that pick the best among candidates rather than filter them.
SUPERLATIVE_RELATIONS = frozenset({'nearest_to', 'farthest_from'})

# --------------------------------------------------------------------------- negation etc.
NEGATIONS = frozenset({'not', "n't", 'no', 'never', 'without', 'non', 'neither', 'nor'})
#: Phrases that exclude what follows: "any cup other than the red one".
EXCLUSIONS: Tuple[Tuple[str, ...], ...] = (
    ('other', 'than'), ('except', 'for'), ('except',), ('apart', 'from'), ('but', 'not'),
    ('excluding',), ('rather', 'than'), ('instead', 'of'), ('aside', 'from'), ('save', 'for'),
    ('besides', 'the'), ('but', 'the'), ('different', 'from'), ('unlike',))
#: Words that point away from the object pointed at or answered ("the other one", "the rest"):
#: a query with one never means it.
OTHER_WORDS = frozenset({'other', 'another', 'others', 'rest', 'remaining', 'else', 'different',
                         'next', 'second'})
UNIQUENESS = frozenset({'only', 'sole', 'single', 'lone', 'unique', 'solitary', 'one-and-only'})

# --------------------------------------------------------------------------- objects
#: Nouns that name no kind ("the thing left of the bowl").
GENERIC_NOUNS = frozenset({
    'object', 'objects', 'thing', 'things', 'item', 'items', 'one', 'ones', 'stuff',
    'everything',
    'something', 'it', 'piece', 'entity', 'article', 'whatever', 'that', 'this', 'those',
    'these', 'target', 'shape', 'figure', 'body', 'element', 'instance', 'guy', 'fellow',
    'model', 'prop', 'toy'})
#: Synonym groups of everyday object names (each word maps to all of its group).
SYNONYM_GROUPS: Tuple[FrozenSet[str], ...] = tuple(frozenset(g.split(',')) for g in (
    'mug,cup,teacup,coffee cup,coffee mug,tumbler,beaker,chalice,goblet,stein,tankard',
    'can,tin,soda can,beverage can,drink can,tin can,soda,pop can,coke,cola,beer can,canister',
    'box,carton,crate,package,packet,parcel,case,container box,cube,block,chest,bin,casket',
    'ball,sphere,orb,globe,marble,baseball,football,softball,bauble,bead',
    'bowl,basin,dish bowl,tureen,vessel bowl',
    'plate,dish,saucer,platter,tray,charger',
    'bottle,flask,jug,carafe,decanter,vial,flagon,pitcher,water bottle,canteen',
    'cone,pylon,traffic cone,funnel,witch hat,spike',
    'shelf,rack,shelving,ledge,shelf unit,bookshelf,bookcase,wall shelf,plank',
    'kettle,teapot,tea kettle,tea pot,pot',
    'book,novel,notebook,volume,textbook,paperback,hardcover,tome,journal',
    'vase,urn,pot vase,amphora',
    'table,desk,counter,countertop,worktop,bench,surface',
    'glass,drinking glass,wine glass,tumbler glass',
    'pan,frying pan,skillet,saucepan,wok',
    'spoon,teaspoon,tablespoon,ladle',
    'knife,blade,cutter',
    'fork,utensil fork',
    'phone,cellphone,mobile,smartphone,telephone',
    'laptop,computer,notebook computer',
    'remote,remote control,controller,clicker',
    'lamp,light,lantern',
    'chair,seat,stool',
    'pen,pencil,marker,biro',
    'bag,sack,pouch,tote',
    'towel,cloth,rag,napkin',
    'sponge,scrubber',
    'toaster,toaster oven',
    'plant,flower,pot plant,houseplant',
    'cereal box,cereal,cereal packet,cereal carton',
    'jar,pot jar,container jar',
    'clock,watch,timer',
    'keyboard,keys',
    'mouse,computer mouse',
    'scissors,shears',
    'bucket,pail',
    'basket,hamper',
    'doll,figurine,figure,statue,statuette',
))
#: Shape adjectives that name a kind when no noun does ("the pointy thing", "the round one").
SHAPE_WORDS: Dict[str, str] = {
    'pointy': 'cone', 'pointed': 'cone', 'conical': 'cone', 'spiky': 'cone',
    'round': 'ball', 'spherical': 'ball', 'ball-shaped': 'ball',
    'cubic': 'box', 'cuboid': 'box', 'boxy': 'box', 'square': 'box', 'rectangular': 'box',
    'cylindrical': 'cylinder', 'tubular': 'cylinder', 'flat': 'plate',
}
#: Words for the speaker or the camera as an anchor ("the cup closest to me").
VIEWER_WORDS = frozenset({'me', 'us', 'myself', 'ourselves', 'you', 'camera', 'viewer',
                          'robot', 'yourself'})
#: Hypernyms: a general word covers these specific names.
HYPERNYMS: Dict[str, FrozenSet[str]] = {k: frozenset(v.split(',')) for k, v in {
    'fruit': 'apple,orange,banana,lemon,lime,pear,peach,plum,grape,grapes,mango,kiwi,melon,'
             'strawberry,cherry,apricot,tangerine,mandarin,clementine,avocado,pineapple',
    'vegetable': 'carrot,tomato,potato,onion,pepper,cucumber,broccoli,lettuce,cabbage,garlic',
    'food': 'apple,orange,banana,lemon,pear,bread,cake,cookie,sandwich,pizza,cereal,ramen,'
            'noodles,egg,cheese,tomato,carrot,donut,muffin,snack,chips,cereal box',
    'drink': 'can,bottle,soda,juice,milk,coffee,tea,water bottle,beer,wine,cola',
    'container': 'box,bowl,jar,can,bottle,mug,cup,vase,basket,bucket,tin,carton,pot,kettle,'
                 'crate,bag,tub',
    'dishware': 'plate,bowl,mug,cup,dish,saucer,glass',
    'crockery': 'plate,bowl,mug,cup,dish,saucer',
    'tableware': 'plate,bowl,mug,cup,fork,knife,spoon,glass',
    'cutlery': 'fork,knife,spoon',
    # "a dish you could put soup in": a bowl too, when no plate fits (a plate first: synonym)
    'dish': 'plate,bowl,saucer,platter',
    'utensil': 'fork,knife,spoon,spatula,ladle,whisk',
    'furniture': 'shelf,table,chair,desk,cabinet,bookcase',
    'appliance': 'kettle,toaster,microwave,blender,fridge',
    'toy': 'ball,doll,block,car,figurine,teddy',
    'citrus': 'orange,lemon,lime,grapefruit,tangerine,mandarin',
    'reading': 'book,magazine,newspaper',
    'cookware': 'pan,pot,kettle,wok,saucepan',
    'cylinder': 'can,bottle,mug,cup,glass,jar,tin,canister,tumbler,vase',
}.items()}
#: Hypernyms that mean the same as another: alias -> the word whose kinds it shares.
HYPERNYM_ALIASES: Dict[str, str] = {'beverage': 'drink'}
HYPERNYMS.update({alias: HYPERNYMS[word] for alias, word in HYPERNYM_ALIASES.items()})

#: Everyday portable things with no synonym here that matters: known kinds, so that "the mug next
#: to the umbrella" in a scene without one is NO_MATCH ("no umbrella here"), not the mug with the
#: anchor dropped. Parts and words that also name a part ("cap", "lid", "handle", "screen",
#: "frame", "tape") and room fixtures that are rarely annotated but present ("sink", "window",
#: "door", "stove") are left out: those carry no evidence when nothing here is one.
OTHER_KINDS: FrozenSet[str] = frozenset('''
shoe shoes sneaker sneakers boot boots slipper slippers sandal sandals sock socks hat glove gloves
scarf tie belt wallet purse handbag backpack rucksack suitcase umbrella headphones headset
earphones earbuds camera tablet monitor television tv speaker radio calculator stapler ruler
eraser envelope folder binder clipboard candle mirror pillow cushion blanket toothbrush
toothpaste soap shampoo hairbrush comb razor sunglasses spectacles hammer screwdriver
wrench spanner pliers drill flashlight torch padlock coin dice puzzle balloon kite skateboard
racket bat frisbee helmet guitar violin trumpet drum microphone printer router battery
lighter matchbox thermos grater colander sieve peeler corkscrew notepad
'''.split())

#: Every word the lexicon knows as the name of a kind of thing: a target or anchor noun among
#: these that no object of the scene is, is absent (NO_MATCH); any other unknown word carries no
#: evidence (docs/LANGUAGE.md#grounding).
KNOWN_NOUNS: FrozenSet[str] = frozenset(
    {w for group in SYNONYM_GROUPS for w in group} | set(HYPERNYMS)
    | {w for kinds in HYPERNYMS.values() for w in kinds}
    | set(SHAPE_WORDS.values()) | OTHER_KINDS) - GENERIC_NOUNS
#: Surfaces that are rarely annotated objects: the support plane the objects stand on, walls,
#: shelves. An anchor among these that names no annotated object is evaluated on the layout
#: (``graph.surface_factors``), not dropped.
SUPPORT_WORDS = frozenset({'table', 'tabletop', 'desk', 'counter', 'countertop', 'worktop',
                           'surface', 'floor', 'ground', 'bench', 'workbench', 'benchtop'})
WALL_WORDS = frozenset({'wall', 'backsplash', 'splashback', 'background', 'back wall'})
SHELF_WORDS = frozenset({'shelf', 'rack', 'ledge', 'shelving', 'bookshelf', 'bookcase',
                         'plank', 'wall shelf'})
SURFACE_WORDS = SUPPORT_WORDS | WALL_WORDS | SHELF_WORDS

# --------------------------------------------------------------------------- filler words
#: Words that carry no reference: articles, requests, pronouns, copulas, politeness.
STOPWORDS = frozenset('''
a an the this that these those some any each every of to at in for from with and or but as
is are was were be been being am it its it's there here where which who whom whose what
please kindly could would will shall should may might must do does did i me my we us our
you your he she they them their one ones find show give get pick grab take fetch bring hand
locate look looking search spot identify point highlight select segment mark tell let see want
need like go just now then up over out also too very really quite rather pretty somewhat
exactly hey robot okay ok so well um uh er hmm thanks thank yeah yes oh scene picture
image view counting count counted starting start started when while if located placed
sitting standing lying positioned situated set kept found stands sits lies rests appears
seems seem looks something someone thing stuff way sided part time place area visible
shown seen within amongst comes come coming goes going being counted numbered ordered order
sequence row line lined placed put sits rest resting sat stood have has had got
directly immediately straight slightly somewhat roughly approximately somewhere exactly off
other another remaining else actually probably maybe perhaps basically kind sort mean meant
talking good nice great
'''.split())
#: Words that join noun phrases into one list of targets ("the mug and the bowl", "the box,
#: the ball as well as the can"); ``parse.conjuncts`` splits there when a determiner follows.
COORDINATORS: Tuple[Tuple[str, ...], ...] = (
    ('and',), (',',), (',', 'and'), ('plus',), ('as', 'well', 'as'), ('together', 'with'),
    ('along', 'with'), ('and', 'also'))
#: Words that start a noun phrase after a coordinator (a determiner or a quantifier).
COORDINATED_STARTS = frozenset({'the', 'a', 'an', 'that', 'this', 'those', 'these', 'both',
                                'all', 'every', 'each', 'its', 'their', 'everything'})
#: Request verbs ("pick up", "hand me") at the start of commands.
REQUEST_PREFIXES: Tuple[Tuple[str, ...], ...] = tuple(tuple(p.split()) for p in (
    'can you', 'could you', 'would you', 'will you', 'can i', 'could i', 'i want', 'i need',
    'i would like', "i'd like", 'show me', 'give me', 'hand me', 'pass me', 'bring me',
    'get me', 'fetch me', 'pick up', 'grab', 'take', 'find', 'locate', 'look for',
    'search for', 'point to', 'point at', 'where is', "where's", 'please', 'go to', 'move to',
    'segment', 'select', 'highlight', 'mark', 'show', 'get', 'fetch', 'bring', 'can i have',
    'could i have', 'may i have', 'can i get', 'could i get', 'can i grab', 'let me have',
    'i will take', 'i will have', 'there is', 'there are', 'look at', 'do you see', 'you see',
    'i see', 'i mean', 'i meant', 'i am looking for', 'i am talking about', 'what about',
    'how about', 'i want you to pick up', 'i want you to find', 'i want you to grab',
    'put away', 'clear off', 'clear away', 'clear', 'remove', 'move', 'collect', 'gather',
    'put'))
