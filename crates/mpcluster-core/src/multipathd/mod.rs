//! multipathd output model, parsers and map health (in progress).
