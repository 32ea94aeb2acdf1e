"""Flax Linen models, one module per family; ``ZOO`` (``zoo.py``) lists one descriptor per
family; ``cpu_kernels`` holds the XLA:CPU formulations of their heavy operations behind one
switch (``cpu_kernels.use_cpu_kernels``)."""

from jaxdl import cpu_kernels
from jaxdl.activations import Maxout
from jaxdl.models import pretrained
from jaxdl.models.autoencoder import VAE, Autoencoder, Decoder, Encoder, VAEOutput
from jaxdl.models.cnn import CNN, BasicBlock, Bottleneck, ResNet
from jaxdl.models.gan import GAN, Discriminator, Generator
from jaxdl.models.gnn import (
    GAT,
    GCN,
    GATLayer,
    GCNLayer,
    GraphNetwork,
    MessagePassingNet,
    Readout,
)
from jaxdl.models.mlp import MLP
from jaxdl.models.perceptron import PerceptronParams, perceptron_fit, perceptron_predict
from jaxdl.models.pretrained import bert_config, from_hf_bert, from_torchvision_resnet
from jaxdl.models.rnn import RNN, RNNClassifier, RNNLayer, RNNSequenceModel
from jaxdl.models.transformer import (
    MultiHeadAttention,
    TransformerBlock,
    TransformerClassifier,
    TransformerLM,
)
from jaxdl.models.zoo import MODELS, OBJECTIVES, SPECS, ZOO, ModelSpec, get

__all__ = [
    "CNN",
    "GAN",
    "VAE",
    "Autoencoder",
    "Decoder",
    "Discriminator",
    "Encoder",
    "Generator",
    "VAEOutput",
    "GAT",
    "GCN",
    "MLP",
    "MODELS",
    "OBJECTIVES",
    "RNN",
    "SPECS",
    "ZOO",
    "BasicBlock",
    "Bottleneck",
    "GATLayer",
    "GCNLayer",
    "GraphNetwork",
    "Maxout",
    "MessagePassingNet",
    "ModelSpec",
    "MultiHeadAttention",
    "RNNClassifier",
    "RNNLayer",
    "RNNSequenceModel",
    "Readout",
    "ResNet",
    "TransformerBlock",
    "TransformerClassifier",
    "TransformerLM",
    "PerceptronParams",
    "bert_config",
    "cpu_kernels",
    "from_hf_bert",
    "from_torchvision_resnet",
    "get",
    "perceptron_fit",
    "perceptron_predict",
    "pretrained",
]
