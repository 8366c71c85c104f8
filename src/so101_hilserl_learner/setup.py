from setuptools import find_packages, setup

package_name = "so101_hilserl_learner"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml", "README.md"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="so101-hilserl maintainers",
    maintainer_email="maintainers@so101-hilserl.invalid",
    description="DrQ-v2 learner: replay buffers, learner node, checkpoints and importers.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "learner_node = so101_hilserl_learner.learner_node:main",
            "checkpoint_tool = so101_hilserl_learner.weight_files.checkpoint_tool:main",
        ],
        # so101/Pick-v0 (gymnasium's plugin group; see so101_hilserl_learner/envs/__init__.py)
        "gymnasium.envs": ["so101 = so101_hilserl_learner.envs:register_envs"],
    },
)
