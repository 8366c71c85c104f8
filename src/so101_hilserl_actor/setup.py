from setuptools import find_packages, setup

package_name = "so101_hilserl_actor"

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
    description="Intervention detection, observation assembly, DrQ-v2 policy network and the 10 Hz actor node.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "actor_node = so101_hilserl_actor.actor_node:main",
            "intervention_node = so101_hilserl_actor.intervention_node:main",
            "keyboard_node = so101_hilserl_actor.keyboard_node:main",
        ]
    },
)
