"""Plot functions (data in, matplotlib ``Figure`` out), paper styles, the report and the
``dropmuon`` command line — the top layer of the toolkit, free to use ``theory``, ``solvers`` and
``verification``.

Importing this package is cheap: matplotlib is imported only by the plotting modules.
"""

__all__: list[str] = []
