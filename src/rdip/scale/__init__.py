"""Scale-out: many image files into a folder, resumably (:mod:`.batch`), on this machine or as
tasks on a Ray cluster (:mod:`.ray`)."""
