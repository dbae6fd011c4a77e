"""Seeing a run: what the database says (queries.py, plain data), and its presentations.

queries.py  leaderboard, ancestry, progress series, generation scores, operator rows, lineage graph:
            no rich, no HTML, so the engine's live view and the exporter read it too
tables.py   the terminal (rich): `synth show`, `synth lineage`
figures.py  each figure drawn once, with matplotlib (Agg)
svg.py      a figure as inline SVG, with the classes and tooltips the page's script uses
html.py     `synth report`: one self-contained page
png.py      `synth plot`: the same figures as PNG, SVG or PDF files
"""
