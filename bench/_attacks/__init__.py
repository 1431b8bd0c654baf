"""Attacks on our own encodings, for ``bench/attack.py`` (see ``bench/README.md``, "attack").

* ``data.py``: the synthetic population, the two agency extracts, their encodings under fresh
  keys, the hub's view, the truth and the attacker's reference populations; linkage F1;
* ``bits.py``: filter matrices: unpacking, distinct filters, undoing balancing, Dice;
* ``resolve.py``: from guessed values to a guessed person; the result rows;
* ``frequency.py``: frequency alignment of token and filter columns;
* ``patterns.py``: pattern mining of Bloom-filter bit patterns (Christen et al., PAKDD 2018);
* ``graph.py``: similarity-graph matching (Vidanage et al., CIKM 2020);
* ``dictionary.py``: the dictionary attack of an adversary who holds the linkage secret.

Nothing here is imported by project code; it runs in the project's ``.venv``.
"""
