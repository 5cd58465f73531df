"""SAEHD: DeepFaceLab's quality model (df/liae autoencoders, GAN, true face)."""
