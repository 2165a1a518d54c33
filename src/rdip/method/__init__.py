"""The method and its engine: the network of Table I and Eq. 1 (:mod:`.model`), padding, the
stopping rules, the fitting loop (:mod:`.engine`), cutting images into tiles and blending them
back (:mod:`.tiling`), and planning a fit's cost and tiles (:mod:`.planning`)."""
