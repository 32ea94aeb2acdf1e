"""XOR: a single linear layer cannot separate it; a small MLP solves it.

Command: ``python examples/xor.py`` (about 5 s on 2 CPU cores): the linear model stays near
chance (about 0.5 test accuracy), the MLP reaches 1.0. ``--quick`` trains fewer epochs.

Full run: python examples/xor.py
Time: about 5 s on 2 CPU cores
Reaches: test accuracy: linear model about 0.5, MLP 1.0
"""

import argparse
import json
import os

import jaxdl


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="xor", help=", ".join(jaxdl.data.names()))
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--out", default="runs/examples", help="folder for the numbers")
    args = parser.parse_args()
    if args.quick:
        print(
            "--quick: a smoke test of the code, seconds long; its numbers teach nothing. "
            "The full run's command, time and result are in this script's docstring."
        )

    data = jaxdl.data.load(args.dataset, seed=0)
    classes = data.info.num_classes
    epochs = 5 if args.quick else 60
    results = {}
    for name, features in [("linear", (classes,)), ("mlp", (16, 16, classes))]:
        model = jaxdl.models.MLP(features=features, activation="tanh")
        trainer = jaxdl.Trainer(model, learning_rate=1e-2, seed=0)
        trainer.fit(data.train, epochs=epochs, batch_size=32, verbose=False)
        results[name] = trainer.evaluate(data.test)["accuracy"]
        print(f"{name:6s} test accuracy {results[name]:.3f}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"xor_{args.dataset}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    jaxdl.use_compilation_cache()  # a second run loads its compiled programs
    main()
