"""The graph a SavedModel export serves: preprocessing, stream models, fusion.

`avlad_tf.export` builds a `ServingModule` from trained stream models and
saves it; the module's signatures are documented there.
"""

import tensorflow as tf

from avlad_tf.data import frame_sources
from avlad_tf.data import preprocessing
from avlad_tf.data import sampling
from avlad_tf.data import schema
from avlad_tf.data import video_example
from avlad_tf.flow import image_ops
from avlad_tf.flow import layer as flow_layer
from avlad_tf.flow import parameters as flow_parameters
from avlad_tf.models import inspection
from avlad_tf.serving import streaming

# Frame pairs per compiled TV-L1 call in the `frames` signature: bounds its
# memory (about 30 float32 planes per pair) whatever the video's length.
FLOW_CHUNK = 16


def _check_inputs(videos):
    """Assertions that name the input: a batch of no videos, videos of no
    frames, or streams whose batch or frame counts differ, would otherwise
    fail deep in the graph (or silently give an empty result)."""
    checks, shapes = [], {m: tf.shape(v) for m, v in videos.items()}
    for modality, shape in shapes.items():
        checks.append(
            tf.debugging.assert_positive(
                shape[0], message=f"input {modality} has no videos (B = 0)"
            )
        )
        checks.append(
            tf.debugging.assert_positive(
                shape[1], message=f"input {modality} has videos of no frames (T = 0)"
            )
        )
    if len(shapes) == 2:
        checks.append(
            tf.debugging.assert_equal(
                shapes["rgb"][:2],
                shapes["flow"][:2],
                message="inputs rgb and flow need the same videos and frames "
                "(B and T of [B, T, H, W, C])",
            )
        )
    return checks


def _uint8_spec(channels, name):
    return tf.TensorSpec([None, None, None, None, channels], tf.uint8, name=name)


class ServingModule(streaming.StreamingSignatures, tf.Module):
    """The exported graph: preprocessing, the stream models and fusion.

    Args:
        models: `{stream: keras.Model}` as trained (`fused`, `rgb`, `flow`).
        config: `build_export_config`'s dict.
        preprocess_kwargs: `make_dataset`'s settings; those that
            `preprocessing.preprocess_for_eval` takes are passed on, so the
            graph preprocesses as evaluation does.
    """

    def __init__(self, *, models, config, preprocess_kwargs):
        super().__init__(name="avlad")
        self.init_streaming(models, config)
        self.endpoint_models = {
            s: inspection.endpoints_model(m) for s, m in models.items()
        }
        self._streams = tuple(config["streams"])
        self._modalities = tuple(config["modalities"])
        self._channels = dict(config["channels"])
        self._fusion = config["fusion"]
        self._weights = dict(config["fusion_weights"] or {})
        self._multi_label = config["multi_label"]
        self._flow_stack = config["flow_stack"]
        self._joint_sampling = config["joint_sampling"]
        self._sampling = config["sampling"]
        self._clips = sampling.clip_settings(config)
        self._num_samples = config["num_frames"]
        # Samples per video: T, or N·T with evaluation clips.
        self._num_frames = sampling.num_steps(
            self._num_samples,
            sampling=self._sampling,
            training=False,
            num_clips=self._clips["num_clips"],
        )
        self._num_crops = dict(config["num_crops"])
        self._preprocess_kwargs = preprocessing.eval_settings(preprocess_kwargs)
        self.class_names_tensor = tf.constant(config["class_names"])
        self._frame_size = (config["frame_height"], config["frame_width"])
        if "flow" in self._modalities:
            family = config["flow"]
            self.flow_layer = flow_layer.TVL1Flow(
                preset=family["preset"],
                parameters=flow_parameters.from_opencv_names(family["parameters"]),
            )
            self._compiled_flow = tf.function(self.flow_layer, jit_compile=True)

    def attach_assets(self, *, labels_path, config_path):
        """Ships the class names and the client config as SavedModel assets."""
        self.labels_asset = tf.saved_model.Asset(labels_path)
        self.config_asset = tf.saved_model.Asset(config_path)

    def preprocess(self, video, modality):
        """uint8 `[B, T, H, W, C]` -> float32 `[B, T·crops, S, S, C]`."""
        channels = self._channels[modality]
        shape = tf.shape(video)
        # Crops are the same for every frame, so the batch is folded into
        # time and preprocessed as one long video.
        frames = tf.reshape(video, tf.concat([[-1], shape[2:]], 0))  # (B·T, H, W, C)
        frames = tf.ensure_shape(frames, [None, None, None, channels])
        crops = preprocessing.preprocess_for_eval(
            frames,
            modality=modality,
            num_crops=self._num_crops[modality],
            **self._preprocess_kwargs,
        )  # (B·T·N, S, S, C), frame-major
        size = crops.shape[1]
        return tf.reshape(
            crops, [shape[0], -1, size, size, channels]
        )  # (B, T·N, S, S, C)

    def run(self, videos):
        """Named outputs for `{modality: uint8 video batch}`."""
        with tf.control_dependencies(_check_inputs(videos)):
            videos = {m: tf.identity(v) for m, v in videos.items()}
        inputs = {m: self.preprocess(v, m) for m, v in videos.items()}
        outputs, logits = {}, {}
        for stream in self._streams:
            model = self.endpoint_models[stream]
            names = inspection.input_names(model)
            ends = model({n: inputs[n] for n in names}, training=False)
            prefix = f"{stream}_" if self._fusion == "late" else ""
            outputs[prefix + "descriptor"] = ends["descriptor"]
            if "assignments" in ends:
                outputs[prefix + "assignments"] = ends["assignments"]
            logits[stream] = ends["logits"]
        return self.fuse(outputs, logits)

    def fuse(self, outputs, logits):
        """Adds the fused `logits` and `probabilities` of `{stream: logits}`."""
        if self._fusion == "late":
            fused = tf.add_n([self._weights[s] * logits[s] for s in self._streams])
        else:
            fused = logits[self._streams[0]]
        outputs["logits"] = fused
        outputs["probabilities"] = (
            tf.sigmoid(fused) if self._multi_label else tf.nn.softmax(fused)
        )
        return outputs

    def _sample(self, video_length, video_id):
        """Evaluation's frame indices for a video of `video_length` frames,
        after an assertion that names the video if it is too short."""
        least = sampling.min_frames(self._modalities, self._flow_stack)
        with tf.control_dependencies(
            [
                tf.debugging.Assert(
                    video_length >= least,
                    [
                        video_id,
                        "has",
                        video_length,
                        "frames; at least",
                        least,
                        "are needed",
                    ],
                )
            ]
        ):
            video_length = tf.identity(video_length)
        return sampling.sample_indices(
            video_length,
            modalities=self._modalities,
            num_samples=self._num_samples,
            flow_stack=self._flow_stack,
            joint_sampling=self._joint_sampling,
            sampling=self._sampling,
            **self._clips,
        )

    def decode_example(self, serialized):
        """One SequenceExample -> `{modality: uint8 [T, H, W, C]}` + id.

        Frames are chosen by the sampling rules exactly as evaluation chooses
        them (`video_input`), and only the chosen JPEGs are decoded.
        """
        example = video_example.decode(serialized)  # checks the frame counts
        video_id = example[schema.VIDEO_ID_KEY]
        indices = self._sample(example[schema.LENGTH_KEY], video_id)
        video = {"video_id": video_id}
        for modality in self._modalities:
            source = (
                frame_sources.rgb_source
                if modality == "rgb"
                else frame_sources.flow_source
            )
            frames, assemble = source(example, indices[modality])
            # The whole decoded frame is the one "crop": [U, 1, H, W, c].
            video[modality] = assemble(frames[:, None])[:, 0]  # (T, H, W, C)
        return video

    def _pair_flow(self, first, second):
        """TV-L1 of grey pairs `[U, H, W]`, FLOW_CHUNK pairs per compiled call
        (blank pairs pad the last chunk; they change nothing, docs/FLOW.md)."""
        count = tf.shape(first)[0]
        padding = -count % FLOW_CHUNK
        chunks = [
            tf.reshape(
                tf.pad(frames, [[0, padding], [0, 0], [0, 0]]),
                [-1, FLOW_CHUNK, *self._frame_size],
            )  # [U / FLOW_CHUNK, FLOW_CHUNK, H, W]
            for frames in (first, second)
        ]
        flows = tf.map_fn(
            lambda pair: self._compiled_flow(pair[0], pair[1]),
            tuple(chunks),
            fn_output_signature=tf.TensorSpec(
                [FLOW_CHUNK, *self._frame_size, 2], tf.float32
            ),
        )
        return tf.reshape(flows, [-1, *self._frame_size, 2])[:count]  # [U, H, W, 2]

    def frames_to_video(self, frames):
        """Decoded RGB frames `[N, H, W, 3]` of one video -> `{modality:
        uint8 [T, H, W, C]}`: evaluation's sampling, then, for flow, TV-L1 of
        the training data's family on exactly the pairs the stacks use,
        quantised as `data_prep` stores it."""
        indices = self._sample(tf.shape(frames)[0], tf.constant("the video"))
        video = {}
        if "rgb" in indices:
            video["rgb"] = tf.gather(frames, indices["rgb"])
        if "flow" in indices:
            needed, position = tf.unique(tf.reshape(indices["flow"], [-1]))
            grey = image_ops.grey_from_rgb(frames)  # [N, H, W]
            flows = self._pair_flow(
                tf.gather(grey, needed), tf.gather(grey, needed + 1)
            )
            quantized = schema.quantize_flow(flows)  # [U, H, W, 2]
            planes = tf.concat([quantized[..., 0], quantized[..., 1]], 0)  # [2U, H, W]
            assemble = frame_sources.flow_assembler(
                position, tf.size(needed), (self._num_frames, self._flow_stack)
            )
            video["flow"] = assemble(planes[:, None, :, :, None])[:, 0]  # [T, H, W, 2L]
        return video

    def run_frames(self, frames):
        """Decoded RGB videos `[B, N, H, W, 3]` -> named outputs."""
        signature = {
            m: tf.TensorSpec(
                [self._num_frames, *self._frame_size, self._channels[m]], tf.uint8
            )
            for m in self._modalities
        }
        videos = tf.map_fn(self.frames_to_video, frames, fn_output_signature=signature)
        return self.run(videos)

    def run_examples(self, examples):
        """Serialised SequenceExamples `[B]` -> named outputs + `video_id`."""
        signature = {"video_id": tf.TensorSpec([], tf.string)}
        for m in self._modalities:
            signature[m] = tf.TensorSpec(
                [self._num_frames, None, None, self._channels[m]], tf.uint8
            )
        decoded = tf.map_fn(
            self.decode_example, examples, fn_output_signature=signature
        )
        video_ids = decoded.pop("video_id")
        outputs = self.run(decoded)
        outputs["video_id"] = video_ids
        return outputs

    def signatures(self):
        """`serving_default`, `serialized_examples` and `class_names`."""
        specs = [_uint8_spec(self._channels[m], m) for m in self._modalities]
        if self._modalities == ("rgb", "flow"):

            def serve(rgb, flow):
                return self.run({"rgb": rgb, "flow": flow})
        elif self._modalities == ("rgb",):

            def serve(rgb):
                return self.run({"rgb": rgb})
        else:

            def serve(flow):
                return self.run({"flow": flow})

        self.serve = tf.function(serve, input_signature=specs)
        self.serve_examples = tf.function(
            lambda examples: self.run_examples(examples),
            input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
        )
        self.serve_frames = tf.function(
            lambda frames: self.run_frames(frames),
            input_signature=[
                tf.TensorSpec(
                    [None, None, *self._frame_size, 3], tf.uint8, name="frames"
                )
            ],
        )
        self.class_names = tf.function(
            lambda: {"class_names": self.class_names_tensor}, input_signature=[]
        )
        return {
            "serving_default": self.serve,
            "serialized_examples": self.serve_examples,
            "frames": self.serve_frames,
            "class_names": self.class_names,
            **self.streaming_signatures(),
        }
