"""The one definition of what every so101 package shares (docs/architecture.md, "Packages"). Import the modules directly
(``from so101_contract.joints import JOINT_NAMES``); this package imports nothing from the project."""
