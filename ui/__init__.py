"""The user interfaces of glassnet: the command line and (soon) the Panel app.

``ui`` imports ``sessions`` and ``engine``; nothing imports ``ui``.
"""
