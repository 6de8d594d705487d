"""PyTorch in fedmq (the ``fedmq[torch]`` extra): any ``nn.Module`` as a fedmq trainer.

``TorchTrainer`` (``torchtrain.trainer``) turns a module, a loss, an optimizer
factory and the worker's ``DataLoader``s into the trainer contract;
``torchtrain.state`` moves a ``state_dict`` to and from named arrays;
``torchtrain.dpsgd`` adds record-level DP-SGD with Opacus; ``torchtrain.mnist1d``
is the built-in 1-D CNN task, ``torchtrain.mnist`` the 2-D CNN on MNIST images. Only this
package imports torch, opacus or mnist1d.
"""
