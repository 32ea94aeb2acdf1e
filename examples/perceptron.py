"""The perceptron and XOR: Rosenblatt's rule learns AND and OR, never XOR; an MLP trained by
backpropagation solves XOR.

Command: ``python examples/perceptron.py`` (a few seconds on 2 CPU cores). It prints the
mistakes per pass of the perceptron on each gate and the accuracy of each model on the four
inputs: perceptron 1.00 on AND and OR, at most 0.75 on XOR; the MLP 1.00 on XOR.

Full run: python examples/perceptron.py
Time: about 5 s on 2 CPU cores
Reaches: perceptron 1.00 on AND and OR, 0.50 on XOR; the MLP 1.00 on XOR
"""

import argparse
import json
import os

import numpy as np

import jaxdl
from jaxdl.models import perceptron_fit, perceptron_predict

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
GATES = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer passes and epochs")
    parser.add_argument("--out", default="runs/examples", help="folder for the numbers")
    args = parser.parse_args()
    if args.quick:
        print(
            "--quick: a smoke test of the code, seconds long; its numbers teach nothing. "
            "The full run's command, time and result are in this script's docstring."
        )
    results = {}
    for gate, truth in GATES.items():
        params, mistakes = perceptron_fit(INPUTS, truth, epochs=20 if args.quick else 100)
        accuracy = float(np.mean(perceptron_predict(params, INPUTS) == truth))
        results[f"perceptron_{gate}"] = accuracy
        shown = mistakes if len(mistakes) <= 10 else [*mistakes[:5], "...", *mistakes[-3:]]
        print(f"perceptron {gate:3s}: accuracy {accuracy:.2f}, mistakes per pass {shown}")

    mlp = jaxdl.models.MLP(features=(8, 2), activation="tanh")
    trainer = jaxdl.Trainer(mlp, learning_rate=0.05, seed=0)
    xor = (INPUTS, np.array(GATES["XOR"]))
    trainer.fit(xor, epochs=50 if args.quick else 300, batch_size=4, verbose=False)
    results["mlp_XOR"] = trainer.evaluate(xor)["accuracy"]
    print(f"MLP (8 tanh units, backprop) XOR: accuracy {results['mlp_XOR']:.2f}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "perceptron.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    jaxdl.use_compilation_cache()  # a second run loads its compiled programs
    main()
