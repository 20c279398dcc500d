"""Loads Stamen's final_model.pt into the tutorial's PyTorch Net.

Usage: python3 load_final_model.py final_model.pt
(Debian: apt-get install python3-torch; then use /usr/bin/python3.)
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """The quickstart's CNN, for 1x28x28 Fashion-MNIST images."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 4 * 4)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


net = Net()
net.load_state_dict(torch.load(sys.argv[1] if len(sys.argv) > 1 else "final_model.pt"))
print("loaded", sum(p.numel() for p in net.parameters()), "parameters into Net")
