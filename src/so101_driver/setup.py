from glob import glob

from setuptools import find_packages, setup

package_name = "so101_driver"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml", "README.md"]),
        ("share/" + package_name + "/urdf", glob("urdf/*.urdf")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="so101-hilserl maintainers",
    maintainer_email="maintainers@so101-hilserl.invalid",
    description="SO-101 drivers, simulation, robot model, kinematics and camera preprocessing.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "sim_node = so101_driver.sim.sim_node:main",
            "fk_node = so101_driver.model.fk_node:main",
            "follower_node = so101_driver.hardware.follower_node:main",
            "leader_node = so101_driver.hardware.leader_node:main",
            "camera_node = so101_driver.hardware.camera_node:main",
            "calibrate = so101_driver.hardware.calibrate:main",
            "servo_emulator = so101_driver.hardware.feetech.emulator:main",
        ],
    },
)
