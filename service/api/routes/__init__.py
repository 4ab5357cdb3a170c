"""One module per resource; routes only parse, call and map."""
