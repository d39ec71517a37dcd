"""Ref-Synth: the procedural referring benchmark, written in the Ref-LERF layout.

``generator`` builds and writes a scene from the tabletop (``scene``, ``shapes``), its referring
expressions (``expressions``, checked with ``relations``), the camera rig (``cameras``) and the
rendered ground truth (``ground_truth``); ``contact_sheet`` draws a picture of it for people.
"""
