from setuptools import find_packages, setup

package_name = "so101_reward"

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
    description="Reward classifier: model, datasets, training CLI and the reward node.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "reward_node = so101_reward.reward_node:main",
            "make_dataset = so101_reward.make_dataset:main",
            "train = so101_reward.train:main",
            "preview = so101_reward.preview:main",
        ]
    },
)
