"""Training with Lightning: the LightningModule, the fit loop, run folders."""
