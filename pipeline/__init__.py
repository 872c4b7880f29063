"""lstm-sentiment: a stage module per DVC stage (``python -m pipeline.<stage>``) and the two
command lines (``predict``, ``sample``) at this level; what they share lives in the wings below
(``core``, ``data``, ``model``, ``tracking``, ``report``), each named for its concern."""
