"""Autoencoder and variational autoencoder on digits: reconstructions, samples, and a walk
through the latent space.

Digits' grey levels are binarised (pixel >= 8 of 16, i.e. >= 0.5 once scaled to [0, 1]): a
Bernoulli decoder's likelihood is a likelihood only for 0/1 pixels. On grey levels its
cross-entropy includes the pixels' own entropy, 13.7 nats per image that no model removes.

Command: ``python examples/vae.py`` (VAE with 8 latent dimensions and an autoencoder beside it,
100 epochs each: 25 s on 2 cores of an AMD EPYC). Expect a test negative ELBO of about 18.4
nats per image against 25.3 for the independent-pixel baseline (27% lower), and 17.4 on the
training images. ``--dataset mnist``
trains on binarised MNIST through TFDS where it can be downloaded (the Flax VAE example
reports about 104 nats); ``--quick`` for a smoke run.

Full run: python examples/vae.py
Time: about 25 s on 2 CPU cores
Reaches: test negative ELBO 18.4 nats per image (independent-pixel baseline 25.3)
"""

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

import jaxdl
from jaxdl.models.autoencoder import independent_pixel_nll


def load(name: str, seed: int):
    """Binarised images (N, H, W, 1) in {0, 1}, split into train and test."""
    if name == "digits":
        from sklearn.datasets import load_digits

        x = load_digits().data.reshape(-1, 8, 8, 1) / 16.0
        x = x[np.random.default_rng(seed).permutation(len(x))]
        cut = int(0.8 * len(x))
        train, test = x[:cut], x[cut:]
    else:
        splits = jaxdl.data.load(name, seed=seed, download=True)
        train, test = np.concatenate([splits.train.x, splits.validation.x]), splits.test.x
    return (train >= 0.5).astype(np.float32), (test >= 0.5).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits", help="digits, or mnist (TFDS)")
    parser.add_argument("--latent", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--out", default="runs/examples", help="folder for pictures and numbers")
    args = parser.parse_args()
    if args.quick:
        print(
            "--quick: a smoke test of the code, seconds long; its numbers teach nothing. "
            "The full run's command, time and result are in this script's docstring."
        )
    train, test = load(args.dataset, args.seed)
    shape = train.shape[1:]
    mnist = args.dataset != "digits"
    latent = args.latent or (32 if mnist else 8)
    hidden = (512, 256) if mnist else (256, 128)
    epochs = 2 if args.quick else args.epochs
    out = os.path.join(args.out, f"vae_{args.dataset}")
    os.makedirs(out, exist_ok=True)
    flat = lambda images: images.reshape(len(images), -1)

    vae = jaxdl.models.VAE((int(np.prod(shape)),), latent_dim=latent, hidden=hidden)
    optimizer = jaxdl.Optimizer("adam", 1e-3, schedule="cosine")
    trainer = jaxdl.Trainer(vae, loss="elbo", optimizer=optimizer, seed=args.seed)
    history = trainer.fit(
        flat(train),
        epochs=epochs,
        batch_size=64 if not mnist else 128,
        validation_data=flat(test),
        verbose=not args.quick,
    )
    test_nll = trainer.evaluate(flat(test))["loss"]
    train_nll = trainer.evaluate(flat(train))["loss"]
    baseline = independent_pixel_nll(flat(train), flat(test))

    # a plain autoencoder with the same sizes, for comparison of reconstructions
    ae = jaxdl.models.Autoencoder((int(np.prod(shape)),), latent_dim=latent, hidden=hidden)
    ae_trainer = jaxdl.Trainer(ae, loss="binary_cross_entropy", learning_rate=1e-3, seed=args.seed)
    ae_trainer.fit((flat(train), flat(train)), epochs=epochs, batch_size=64, verbose=False)

    variables = trainer.state.variables()
    show = test[:10]
    vae_recon = vae.apply(variables, flat(show), method=vae.reconstruct)
    ae_recon = jax.nn.sigmoid(ae_trainer.predict(flat(show)))
    samples = vae.apply(variables, jax.random.key(args.seed), 30, method=vae.sample)
    # walk in a straight line between the codes of two test images
    mean, _ = vae.apply(variables, flat(test[:2]), method=vae.encode)
    steps = jnp.linspace(0, 1, 10)[:, None]
    path = vae.apply(variables, (1 - steps) * mean[0] + steps * mean[1], method=vae.decode)
    walk = jax.nn.sigmoid(path)

    as_images = lambda a: np.asarray(a).reshape(-1, *shape)
    jaxdl.plotting.plot_image_grid(
        np.concatenate([show, as_images(vae_recon), as_images(ae_recon)]),
        os.path.join(out, "reconstructions.png"),
        row_labels=["test", "VAE", "AE"],
    )
    jaxdl.plotting.plot_image_grid(
        as_images(samples), os.path.join(out, "samples.png"), title="VAE samples from N(0, I)"
    )
    jaxdl.plotting.plot_image_grid(
        as_images(walk), os.path.join(out, "interpolation.png"), title="latent interpolation"
    )
    jaxdl.plotting.plot_history(history, os.path.join(out, "loss_curve.png"))
    numbers = {
        "test_negative_elbo_nats": test_nll,
        "train_negative_elbo_nats": train_nll,
        "independent_pixel_baseline_nats": baseline,
        "below_baseline": 1 - test_nll / baseline,
        "epochs": epochs,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(numbers, f, indent=2)
    print(
        f"VAE on binarised {args.dataset}: test negative ELBO {test_nll:.2f} nats per image "
        f"(train {train_nll:.2f}); independent-pixel baseline {baseline:.2f} "
        f"({100 * numbers['below_baseline']:.0f}% lower)"
    )
    print(
        f"wrote {out}/: reconstructions.png samples.png interpolation.png loss_curve.png "
        "metrics.json"
    )


if __name__ == "__main__":
    jaxdl.use_compilation_cache()  # a second run loads its compiled programs
    main()
