"""The pipeline's files and text: raw review files, cleaning and tokenizing, shards, word vectors,
atomic writes. Imports only core; stages and the other wings import it."""
