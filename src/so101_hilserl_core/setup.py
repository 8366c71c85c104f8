from setuptools import find_packages, setup

package_name = "so101_hilserl_core"

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
    description="The task's MDP, the DrQ-v2 policy network and its formats, shared by actor, learner and tools.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
)
