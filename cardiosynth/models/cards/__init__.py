"""Model cards: the ``README.md`` of each bundled weights folder, one module per model.

Each ``<model>.model_card(config, ...)`` takes the model's config and the figures its training (or evaluation)
measured, as stored in the folder's ``config.json`` (``extra``), and returns the Markdown; the trainer writes
it beside the weights. The prose lives here, next to the models, so a card can be rebuilt from the folder alone
(``tests/test_model_cards.py``) and ``training/`` keeps none. The anatomy bank's card is its own method
(:meth:`cardiosynth.render.bank.AnatomyBank.model_card`).
"""

ACDC_LICENCE = """## Licence
Trained on ACDC, which is licensed CC BY-NC-SA 4.0: these weights carry the same licence (non-commercial,
share-alike). Cite Bernard et al., IEEE TMI 37(11):2514-2525, 2018.
"""
