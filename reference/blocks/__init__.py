"""The block compiler: straight-line code turned into one Python function generated from
the readable semantics (``compiler.py`` forms and compiles blocks, ``inline.py`` inlines
one semantics function for one decoded instruction). ``reference.step.run`` uses it;
``step()`` stays the precise interpreter and the fallback.
"""
