"""Dataset sources: labelled image folders and labelled rosbag2 bags (written here with rosbags), and their errors."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING as PRE
from so101_reward.dataset import RewardDataset
from so101_reward.make_dataset import main as make_dataset_main
from so101_reward.sources import SourceError, from_image_folders, from_labelled_bags

TOPIC = "/wrist_camera/image_raw"
W, H = PRE.source_width, PRE.source_height
RNG = np.random.default_rng(7)


def raw_frame(height: int = H, width: int = W) -> np.ndarray:
    """A random RGB camera frame: every frame is different, so a frame identifies where it came from."""
    return RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def write_image(path: Path, rgb: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return rgb


def rows_by_frame(dataset: RewardDataset) -> dict[bytes, tuple[int, str]]:
    """{frame bytes: (label, episode name)} of every frame in the dataset."""
    rows = {}
    for frame, label, episode in zip(dataset.frames, dataset.labels, dataset.episodes, strict=True):
        rows[frame.tobytes()] = (int(label), dataset.episode_names[episode])
    assert len(rows) == len(dataset), "two frames of the dataset are identical"
    return rows


# ---- image folders ---------------------------------------------------------------------------------------------
def test_image_folders_round_trip_with_episode_grouping(tmp_path):
    layout = {  # path under root -> (label, episode)
        "success/ep003/frame_0001.png": (1, "ep003"),
        "success/ep003/frame_0002.PNG": (1, "ep003"),
        "success/single_a.png": (1, "single_a"),
        "failure/ep003/frame_0000.png": (0, "ep003"),
        "failure/ep007/cam/0001.bmp": (0, "ep007"),
        "failure/ep007/cam/0002.png": (0, "ep007"),
        "failure/single_b.png": (0, "single_b"),
    }
    expected = {}
    for relative, row in layout.items():
        rgb = write_image(tmp_path / relative, raw_frame())
        expected[PRE.apply(rgb, "rgb8").tobytes()] = row
    (tmp_path / "failure" / "notes.txt").write_text("not an image")

    dataset = from_image_folders(tmp_path)
    assert len(dataset) == len(layout)
    assert rows_by_frame(dataset) == expected
    assert sorted(dataset.episode_names) == ["ep003", "ep007", "single_a", "single_b"]
    # ep003 is one episode holding frames of both labels.
    ep003 = dataset.episodes == dataset.episode_names.index("ep003")
    assert sorted(dataset.labels[ep003]) == [0, 1, 1]
    assert dataset.preprocessing == PRE

    # The file round trip keeps all of it.
    loaded = RewardDataset.load(dataset.save(tmp_path / "out.npz"))
    assert rows_by_frame(loaded) == expected


def test_positive_negative_aliases_and_a_single_class(tmp_path):
    a = write_image(tmp_path / "both" / "positive" / "run1" / "a.png", raw_frame())
    b = write_image(tmp_path / "both" / "negative" / "b.png", raw_frame())
    dataset = from_image_folders(tmp_path / "both")
    assert rows_by_frame(dataset) == {
        PRE.apply(a).tobytes(): (1, "run1"),
        PRE.apply(b).tobytes(): (0, "b"),
    }
    write_image(tmp_path / "only" / "failure" / "c.png", raw_frame())
    only = from_image_folders(tmp_path / "only")
    assert len(only) == 1 and only.positives == 0


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(SourceError, match=r"empty has neither success/ nor failure/.*images/"):
        from_image_folders(tmp_path / "empty")
    with pytest.raises(SourceError, match="no such folder"):
        from_image_folders(tmp_path / "missing")

    write_image(tmp_path / "small" / "success" / "ep1" / "f.png", raw_frame(240, 320))
    with pytest.raises(SourceError, match=r"ep1/f\.png is 320x240, but the preprocessing expects .* 640x480"):
        from_image_folders(tmp_path / "small")

    (tmp_path / "ambiguous" / "success").mkdir(parents=True)
    (tmp_path / "ambiguous" / "positive").mkdir()
    with pytest.raises(SourceError, match="both success/ and positive/"):
        from_image_folders(tmp_path / "ambiguous")

    broken = tmp_path / "broken" / "failure" / "x.png"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"this is not a png")
    with pytest.raises(SourceError, match=r"x\.png: OpenCV cannot read"):
        from_image_folders(tmp_path / "broken")

    (tmp_path / "noimages" / "success").mkdir(parents=True)
    (tmp_path / "noimages" / "success" / "readme.txt").write_text("")
    with pytest.raises(SourceError, match="no .png/.jpg/.jpeg/.bmp images"):
        from_image_folders(tmp_path / "noimages")


# ---- labelled bags ---------------------------------------------------------------------------------------------
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
Image = TYPESTORE.types["sensor_msgs/msg/Image"]
CompressedImage = TYPESTORE.types["sensor_msgs/msg/CompressedImage"]
JointState = TYPESTORE.types["sensor_msgs/msg/JointState"]
Header = TYPESTORE.types["std_msgs/msg/Header"]
Time = TYPESTORE.types["builtin_interfaces/msg/Time"]


def header(i: int):
    return Header(stamp=Time(sec=i // 10, nanosec=(i % 10) * 100_000_000), frame_id="wrist_camera_optical_frame")


def image_msg(rgb: np.ndarray, encoding: str, i: int):
    pixels = rgb if encoding == "rgb8" else np.ascontiguousarray(rgb[..., ::-1])
    if encoding == "mono8":
        pixels = rgb[..., 0]
    height, width = rgb.shape[:2]
    step = width * (1 if encoding == "mono8" else 3)
    return Image(
        header=header(i),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=np.ascontiguousarray(pixels).reshape(-1),
    )


def compressed_msg(rgb: np.ndarray, i: int):
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return CompressedImage(header=header(i), format="rgb8; png compressed bgr8", data=png.reshape(-1))


def write_bag(path: Path, storage: StoragePlugin, frames: list, topic: str = TOPIC, kind: str = "rgb8") -> None:
    """A bag with ``frames`` on ``topic`` and, between them, joint states (which must not count as frames)."""
    with Writer(path, version=9, storage_plugin=storage) as writer:
        msgtype = "sensor_msgs/msg/CompressedImage" if kind == "compressed" else "sensor_msgs/msg/Image"
        images = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
        joints = writer.add_connection("/follower/joint_states", "sensor_msgs/msg/JointState", typestore=TYPESTORE)
        for i, rgb in enumerate(frames):
            t = 1_000_000_000 + i * 100_000_000
            state = JointState(
                header=header(i), name=["gripper"], position=np.array([0.1 * i]), velocity=np.zeros(1),
                effort=np.zeros(1),
            )  # fmt: skip
            writer.write(joints, t - 50_000_000, TYPESTORE.serialize_cdr(state, JointState.__msgtype__))
            msg = compressed_msg(rgb, i) if kind == "compressed" else image_msg(rgb, kind, i)
            writer.write(images, t, TYPESTORE.serialize_cdr(msg, msgtype))


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """Bags of each storage and message kind, with the raw frames written into them."""
    root = tmp_path_factory.mktemp("bags")
    frames = {
        "episode_000": [raw_frame() for _ in range(8)],  # MCAP, rgb8
        "episode_001": [raw_frame() for _ in range(6)],  # sqlite3, bgr8
        "session_2": [raw_frame() for _ in range(9)],  # MCAP, rgb8: two episodes
        "compressed": [raw_frame() for _ in range(3)],  # MCAP, CompressedImage (png)
    }
    write_bag(root / "episode_000", StoragePlugin.MCAP, frames["episode_000"])
    write_bag(root / "episode_001", StoragePlugin.SQLITE3, frames["episode_001"], kind="bgr8")
    write_bag(root / "session_2", StoragePlugin.MCAP, frames["session_2"])
    write_bag(root / "compressed", StoragePlugin.MCAP, frames["compressed"], TOPIC + "/compressed", "compressed")
    write_bag(root / "mono", StoragePlugin.MCAP, [raw_frame()], kind="mono8")
    write_bag(root / "small", StoragePlugin.MCAP, [raw_frame(240, 320)])
    return root, frames


def write_labels(root: Path, doc: dict, name: str = "labels.json") -> Path:
    path = root / name
    path.write_text(json.dumps(doc))
    return path


def test_labelled_bags_give_exactly_the_written_frames_and_labels(bags):
    root, frames = bags
    label_file = write_labels(
        root,
        {
            "topic": TOPIC,
            "episodes": [
                {"bag": "episode_000", "success": [[2, 3], [6, 7]]},
                {"bag": "episode_001", "success_start": 4},
                {"bag": "session_2", "frames": [0, 3], "success": []},
                {"bag": "session_2/", "frames": [4, 8], "success": [[7, 8]]},
                {"bag": "compressed", "topic": TOPIC + "/compressed", "success": [[1, 1]]},
            ],
        },
    )
    dataset = from_labelled_bags(label_file)

    expected_rows = [  # (bag, frame index, label, episode name) in label-file order
        *[("episode_000", i, int(i in (2, 3, 6, 7)), "episode_000") for i in range(8)],
        *[("episode_001", i, int(i >= 4), "episode_001") for i in range(6)],
        *[("session_2", i, 0, "session_2#0") for i in range(4)],
        *[("session_2", i, int(i >= 7), "session_2#1") for i in range(4, 9)],
        *[("compressed", i, int(i == 1), "compressed") for i in range(3)],
    ]
    assert len(dataset) == len(expected_rows)
    assert dataset.episode_names == ["episode_000", "episode_001", "session_2#0", "session_2#1", "compressed"]
    for k, (bag, index, label, episode) in enumerate(expected_rows):
        np.testing.assert_array_equal(
            dataset.frames[k], PRE.apply(frames[bag][index], "rgb8"), err_msg=f"{bag} {index}"
        )
        assert dataset.labels[k] == label, (bag, index)
        assert dataset.episode_names[dataset.episodes[k]] == episode

    # The topic argument overrides the file's: the compressed bag alone, by the CLI, appended to a dataset.
    only = write_labels(root, {"episodes": [{"bag": "compressed", "success_start": 2}]}, "only.json")
    out = root / "cli.npz"
    assert make_dataset_main(["bags", str(only), "--topic", TOPIC + "/compressed", "--out", str(out)]) == 0
    assert make_dataset_main(["bags", str(only), "--topic", TOPIC + "/compressed", "--out", str(out), "--append"]) == 0
    appended = RewardDataset.load(out)
    assert len(appended) == 6 and list(appended.labels) == [0, 0, 1] * 2 and len(appended.episode_names) == 2
    np.testing.assert_array_equal(appended.frames[3], PRE.apply(frames["compressed"][0]))


@pytest.mark.parametrize(
    ("episode", "top", "message"),
    [
        ({"bag": "nope", "success": []}, {}, r"episodes\[0\] \(bag 'nope'\): bag not found at .*nope"),
        (
            {"bag": "episode_000", "success": []},
            {"topic": "/cam"},
            r"no topic /cam; its topics: .*/follower/joint_states",
        ),
        ({"bag": "episode_000", "success": [[5, 8]]}, {}, r"success range \[5, 8\] is outside .* frames 0\.\.7"),
        (
            {"bag": "episode_000", "frames": [0, 8], "success": []},
            {},
            r"frames \[0, 8\] is outside the bag's frames 0\.\.7",
        ),
        ({"bag": "episode_000", "success_start": 8}, {}, r"success_start 8 is outside the episode's frames 0\.\.7"),
        ({"bag": "session_2", "frames": [4, 8], "success": [[2, 5]]}, {}, r"success range \[2, 5\] is outside"),
        (
            {"bag": "episode_000", "success": "40-80"},
            {},
            r"episodes\[0\] \(bag 'episode_000'\)\.success must be a list",
        ),
        ({"bag": "episode_000", "success": [[3, 1]]}, {}, r"success\[0\] = \[3, 1\]: first must be <= last"),
        ({"bag": "episode_000", "success": [[1, 2.5]]}, {}, r"success\[0\]\[1\] must be a frame index"),
        ({"bag": "episode_000", "frames": [0], "success": []}, {}, r"\.frames must be an inclusive \[first, last\]"),
        ({"bag": "episode_000"}, {}, "give exactly one of 'success'"),
        ({"bag": "episode_000", "success": [], "success_start": 1}, {}, "give exactly one of 'success'"),
        ({"bag": "episode_000", "sucess": []}, {}, r"unknown field\(s\) \['sucess'\]"),
        ({"bag": 3, "success": []}, {}, r"episodes\[0\]\.bag must be the bag directory"),
        ({"bag": "mono", "success": []}, {}, r"bag 'mono' .* frame 0: unsupported image encoding 'mono8'"),
        ({"bag": "small", "success": []}, {}, r"bag 'small' .* frame 0 is 320x240, but the preprocessing expects"),
        ({"bag": "episode_000", "success": []}, {"topic": "/follower/joint_states"}, "carries sensor_msgs/msg/JointSt"),
    ],
)
def test_label_file_errors_name_the_problem(bags, episode, top, message):
    root, _ = bags
    label_file = write_labels(root, {**top, "episodes": [episode]}, "bad.json")
    with pytest.raises(SourceError, match=message):
        from_labelled_bags(label_file)


@pytest.mark.parametrize(
    ("episodes", "message"),
    [
        (  # frame 4 is in both episodes: labelled 1 by the first, 0 by the second
            [
                {"bag": "session_2", "frames": [0, 5], "success": [[4, 5]]},
                {"bag": "session_2", "frames": [4, 8], "success": []},
            ],
            r"episodes\[0\] \(bag 'session_2'\) takes frames \[0, 5\] and episodes\[1\] \(bag 'session_2'\) frames "
            r"\[4, 8\] .* overlap at 4\.\.5 \(frame 4 is labelled 1 by one and 0 by the other\)",
        ),
        (  # the whole bag twice (no 'frames'), listed in another order than the frames
            [
                {"bag": "episode_000", "success": [[1, 2]]},
                {"bag": "session_2", "success": []},
                {"bag": "episode_000/", "success_start": 6},
            ],
            r"episodes\[0\] \(bag 'episode_000'\) takes frames \[0, 7\] and episodes\[2\] .* overlap at 0\.\.7 "
            r"\(frame 1 is labelled 1 by one and 0 by the other\)",
        ),
        (  # the same labels on both sides still count the frames twice
            [
                {"bag": "session_2", "frames": [4, 8], "success": []},
                {"bag": "session_2", "frames": [0, 4], "success": []},
            ],
            r"overlap at 4\.\.4 \(those frames would be counted twice\)",
        ),
    ],
)
def test_overlapping_frame_ranges_of_one_bag_are_refused(bags, tmp_path, capsys, episodes, message):
    root, _ = bags
    label_file = write_labels(root, {"episodes": episodes}, "overlap.json")
    with pytest.raises(SourceError, match=message):
        from_labelled_bags(label_file)
    out = tmp_path / "x.npz"
    assert make_dataset_main(["bags", str(label_file), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "overlap" in err and str(label_file) in err
    assert not out.exists()


def test_malformed_label_files(bags, tmp_path, capsys):
    root, _ = bags
    bad_json = root / "broken.json"
    bad_json.write_text('{"episodes": [')
    with pytest.raises(SourceError, match="not valid JSON"):
        from_labelled_bags(bad_json)
    with pytest.raises(SourceError, match="'episodes' must be a non-empty list"):
        from_labelled_bags(write_labels(root, {"episodes": []}, "empty.json"))
    with pytest.raises(SourceError, match=r"unknown field\(s\) \['episode'\]"):
        from_labelled_bags(write_labels(root, {"episode": []}, "typo.json"))
    with pytest.raises(SourceError, match="no such label file"):
        from_labelled_bags(root / "missing.json")

    # The CLI: exit status 2 and a one-line error, no traceback.
    status = make_dataset_main(["bags", str(root / "missing.json"), "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("make_dataset: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists()


# ---- bags the reader cannot open: the CLI ends with one line naming the bag, the cause and the fix (exit 2) -----
# What Jazzy's `ros2 bag record --all` stores for a service's event topic: the .srv text under an "SRV:" delimiter,
# which the pinned rosbags cannot parse.
SET_BOOL_EVENT_DEFINITION = (
    "=" * 80 + "\nSRV: std_srvs/srv/SetBool\nbool data # e.g. for hardware enabling / disabling\n---\n"
    "bool success   # indicate successful run of triggered service\nstring message # informational\n"
)


def _service_events(root: Path) -> str:
    with Writer(root / "services", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        images = writer.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=TYPESTORE)
        writer.add_connection(
            "/follower/set_torque/_service_event",
            "std_srvs/srv/SetBool_Event",
            msgdef=SET_BOOL_EVENT_DEFINITION,
            rihs01="RIHS01_" + "5" * 64,
        )
        writer.write(images, 1, TYPESTORE.serialize_cdr(image_msg(raw_frame(), "rgb8", 0), "sensor_msgs/msg/Image"))
    return "services"


def _unknown_definition(root: Path) -> str:
    """A topic recorded without its definition: Jazzy's rosbag2 then writes MCAP schema encoding 'unknown'."""
    write_bag(root / "unknown", StoragePlugin.MCAP, [raw_frame()])
    mcap = next((root / "unknown").glob("*.mcap"))
    data = mcap.read_bytes()
    assert data.count(b"ros2msg") >= 1
    mcap.write_bytes(data.replace(b"ros2msg", b"unknown"))  # same length: every record stays well formed
    return "unknown"


def _text_storage(root: Path) -> str:
    write_bag(root / "text_storage", StoragePlugin.MCAP, [raw_frame()])
    next((root / "text_storage").glob("*.mcap")).write_text("not an MCAP file\n")
    return "text_storage"


def _text_mcap_file(root: Path) -> str:
    (root / "session.mcap").write_text("not an MCAP file\n")
    return "session.mcap"


def _not_a_bag(root: Path) -> str:
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("session notes\n")
    return "notes"


def _empty_folder(root: Path) -> str:
    (root / "empty").mkdir()
    return "empty"


def _broken_metadata(root: Path) -> str:
    write_bag(root / "broken", StoragePlugin.MCAP, [raw_frame()])
    (root / "broken" / "metadata.yaml").write_text("rosbag2_bagfile_information: [\n")
    return "broken"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_service_events, ["holds service events", "/follower/set_torque/_service_event", "--all-topics", "--exclude"]),
        (_unknown_definition, ["recorded without its message definition", "source the workspace"]),
        (_text_storage, ["its storage file is not a readable MCAP or sqlite3 file"]),
        (_text_mcap_file, ["is a file; point at the bag directory"]),
        (_not_a_bag, ["is not a rosbag2 bag: it has no metadata.yaml"]),
        (_empty_folder, ["is an empty folder"]),
        (_broken_metadata, ["metadata.yaml is broken", "ros2 bag reindex"]),
    ],
)
def test_unreadable_bags_end_the_cli_with_one_line(tmp_path, capsys, make, expected):
    bag = make(tmp_path)
    label_file = write_labels(tmp_path, {"episodes": [{"bag": bag, "success": []}]})
    status = make_dataset_main(["bags", str(label_file), "--out", str(tmp_path / "data.npz"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("make_dataset: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert bag in err and "bool data" not in err and len(err) < 500, err  # names the bag, no definition dump
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "data.npz").exists()


def test_a_bag_without_stored_definitions_reads_with_jazzy_types(tmp_path):
    """sqlite3 bags from Humble store no message definitions: the images still read, with ROS 2 Jazzy's types."""
    import sqlite3

    frames = [raw_frame() for _ in range(3)]
    write_bag(tmp_path / "humble", StoragePlugin.SQLITE3, frames)
    database = sqlite3.connect(tmp_path / "humble" / "humble.db3")
    with database:
        database.execute("DELETE FROM message_definitions")
    database.close()
    dataset = from_labelled_bags(write_labels(tmp_path, {"episodes": [{"bag": "humble", "success_start": 2}]}))
    assert list(dataset.labels) == [0, 0, 1]
    np.testing.assert_array_equal(dataset.frames[1], PRE.apply(frames[1], "rgb8"))
