"""Language layer: read a query, ground it in the scene's objects (docs/LANGUAGE.md).

``parse.py`` reads text into target / attributes / relations / ordinals, ``graph.py`` holds the
annotated objects with their words, colour and geometry in a view, ``ground.py`` runs the query as
a small program over them and says how it read it.
"""
