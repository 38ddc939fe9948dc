"""The words of the Train page, explained (its expander "What the words on this page mean")."""

__all__ = ["GLOSSARY"]

GLOSSARY = """
- **Round**: one pass of *simulate, then train*. A sequential method's next round simulates where the
  last posterior points, so each round looks more closely at the parameters that fit the observation.
- **Epoch**: one pass of training over all simulations so far. The **loss** measures how badly the
  network predicts the parameters of the simulations: lower is better, but only within a round (a new
  round brings new simulations, so its loss starts higher again).
- **Validation loss**: the loss on simulations held back from training. When it stops improving for
  *patience* epochs, training stops early and keeps the network of its best epoch (the star).
- **NSF / MAF, layers and units**: the network is a *normalizing flow*, which turns a simple bell curve
  into the posterior by a stack of learned bends. "4 layers, 50 units" means 4 bends stacked, each
  computed by a small neural network 50 numbers wide: more layers and units can draw more complicated
  shapes, and train more slowly. A neural spline flow (NSF) bends with smooth curves, a masked
  autoregressive flow (MAF) with simpler shifts and stretches.
- **SNPE (APT) and its contrastive loss**: from round 2 on, SNPE simulates at parameters from the last
  posterior instead of the prior. To learn the right answer anyway, it trains by a guessing game: for each
  simulation, pick the parameter that really made it from among 10 candidates. That is the
  *contrastive* loss, on a different scale from round 1's loss.
- **TSNPE**: simulates from the prior, cut down to where the last posterior lives, and trains with
  the plain loss.
- **Acceptance**: the share of the network's draws that fall inside the prior's range. Draws outside
  are thrown away, so an acceptance of 60 % means 4 in 10 draws were outside and drawn again.
"""
