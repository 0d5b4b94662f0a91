"""MetaInf: measured, meta-learned choice of each model's execution method (docs/metainf.md).

A library: it never touches the chain. `zoo` builds the models measured, `methods` the ways to run
them, `harness` the raw timing table, `features` + `selector` the meta-learner and its
leave-one-model-out evaluation, and `consensus` the one rule that says which choices a node may
make locally (output-preserving) and which only a publisher may register.
"""
