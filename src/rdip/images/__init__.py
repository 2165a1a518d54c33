"""Images and data: image files in and out (:mod:`.files`), the CIFAR-10 test images
(:mod:`.cifar10`), synthetic noise and its estimate (:mod:`.noise`), quality scores
(:mod:`.metrics`)."""
