"""The front: the `showcase` console script (`cli`), the catalog of demos, the tour and the app.
It reads what the domains declare (`core.demo`); no domain imports it."""
