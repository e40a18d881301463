"""Heat maps: where in a photo the classifier looked for a class (Grad-CAM), and their picture."""
