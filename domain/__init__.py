"""Pure core: models, rules, ports and one module per worker. No I/O here."""
