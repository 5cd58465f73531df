"""Quick96: DeepFaceLab's fast-start model (96 px, no questions)."""
