import os
from glob import glob

from setuptools import find_packages, setup

package_name = "so101_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml", "README.md"]),
        # isfile: a symlink-install build tree keeps dangling links to config files since moved or deleted
        ("share/" + package_name + "/config", sorted(f for f in glob("config/*") if os.path.isfile(f))),
        ("share/" + package_name + "/launch", sorted(glob("launch/*.launch.py"))),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="so101-hilserl maintainers",
    maintainer_email="maintainers@so101-hilserl.invalid",
    description="Launch files, parameters, rviz2 config, process runner and bag recorder.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "runner = so101_bringup.runner:main",
            "recorder = so101_bringup.records.recorder:main",
            "import_bag = so101_bringup.records.importer:main",
            "report = so101_bringup.records.report:main",
        ]
    },
)
