"""Content features: item text and images encoded into ``<modality>_feat.npy`` files."""
