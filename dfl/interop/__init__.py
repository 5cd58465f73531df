"""Other programs' files: DeepFaceLab model import and DeepFaceLive .dfm export."""
