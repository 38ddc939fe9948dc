"""The tabs of the *Your model & data* page (``pages/data.py``): :mod:`.simulator` (upload
simulator code), :mod:`.table` (a table of simulations), :mod:`.json` (many observations, priors
and RunSpecs as JSON), and what they share in :mod:`.common`."""
