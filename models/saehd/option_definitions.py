"""SAEHD's option table (docs/dfl-trainer.md §4.2): DFL's prompts in its ask order, with their
defaults, ranges, rounding, conditions, help and fixed-vs-changeable flags. The rules that tie
the answers together live in models/saehd/option_rules.py."""

from __future__ import annotations

from dfl.models.saehd.option_rules import (
    D_DIMS_DEFAULT,
    RESOLUTION_RANGE,
    d_mask_default,
    gan_on,
    gan_patch_default,
    is_df,
    resolution_multiple,
    validate_archi,
    validate_true_face,
)
from dfl.options import Option

FACE_TYPES = ("h", "mf", "f", "wf", "head")
MASKED_TRAINING_FACE_TYPES = ("wf", "head")  # masked_training is asked only for these
LR_DROPOUT_CHOICES = ("n", "y", "cpu")
CT_MODES = ("none", "rct", "lct", "mkl", "idt", "sot")

# docs/dfl-trainer.md §4.2, in DFL's ask order; F (changeable=False) options are fixed at creation.
SAEHD_OPTIONS: tuple[Option, ...] = (
    Option(
        name="resolution",
        label="Resolution",
        type=int,
        default=128,
        range=RESOLUTION_RANGE,
        multiple_of=resolution_multiple,
        changeable=False,
        group="model",
        help="Side of the square face images the model learns, in pixels. More pixels show "
        "more detail but cost memory and time per iteration. Rounded down to a multiple of 16, "
        "or of 32 when the archi has -d or -t.",
    ),
    Option(
        name="face_type",
        label="Face type",
        type=str,
        default="f",
        choices=FACE_TYPES,
        changeable=False,
        group="model",
        help="How much of the head the model learns: h = half face (sharpest detail, but the "
        "cheeks are cut off), mf = mid-half face (about 30% wider than half), f = full face, "
        "wf = whole face including the forehead, head = the whole head (needs XSeg masks in "
        "both facesets). The facesets should be extracted with this face type or a larger one.",
    ),
    Option(
        name="archi",
        label="AE architecture",
        type=str,
        default="liae-ud",
        validate=validate_archi,
        changeable=False,
        group="model",
        hint="df/liae[-udtc]",
        help="Network layout. df: one shared encoder and inter with a decoder per person; "
        "keeps more of the src identity but wants src and dst faces of similar shape. liae: "
        "two inter networks and one shared decoder; copes better with different face shapes "
        "and lighting. Optional letters after a dash, in any combination: u = stronger "
        "likeness to src (normalised code); d = double the resolution at about the same cost "
        "(experimental; resolution becomes a multiple of 32); t = one more down/up-scaling "
        "stage (resolution a multiple of 32); c = cosine activation instead of leaky ReLU "
        "(experimental). Examples: liae-ud, df-udt.",
    ),
    Option(
        name="ae_dims",
        label="AutoEncoder dimensions",
        type=int,
        default=256,
        range=(32, 1024),
        changeable=False,
        group="model",
        help="Width of the bottleneck code that carries everything the model knows about a "
        "face. Too small and details such as closed eyes get lost; larger needs more memory.",
    ),
    Option(
        name="e_dims",
        label="Encoder dimensions",
        type=int,
        default=64,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
        group="model",
        help="Base channel count of the encoder. More channels learn more facial features and "
        "give a sharper result, at the cost of memory. Rounded up to an even number.",
    ),
    Option(
        name="d_dims",
        label="Decoder dimensions",
        type=int,
        default=D_DIMS_DEFAULT,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
        group="model",
        help="Base channel count of the decoder(s). More channels give a sharper, more "
        "detailed result, at the cost of memory. Rounded up to an even number.",
    ),
    Option(
        name="d_mask_dims",
        label="Decoder mask dimensions",
        type=int,
        default=d_mask_default,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
        group="model",
        help="Base channel count of the decoder's mask branch; a third of the decoder "
        "dimensions is usually enough (the default). Raise it when the masks were edited by "
        "hand, e.g. to leave out obstacles, so that the learnt mask can follow them. Rounded "
        "up to an even number.",
    ),
    Option(
        name="masked_training",
        label="Masked training",
        type=bool,
        default=True,
        when=lambda r: r.get("face_type") in MASKED_TRAINING_FACE_TYPES,
        group="training",
        help="Count only the face inside the mask (full-face or XSeg) in the loss, so the "
        "model spends its effort on the face instead of the background. Asked for whole face "
        "and head only; smaller face types always train masked. Turning it off for a while "
        "lets a whole-face or head model learn the surroundings too.",
    ),
    Option(
        name="eyes_mouth_prio",
        label="Eyes and mouth priority",
        type=bool,
        default=False,
        group="training",
        help="Weigh the eyes and mouth much more heavily in the loss. Helps when the eyes look "
        "the wrong way or the teeth stay blurred.",
    ),
    Option(
        name="uniform_yaw",
        label="Uniform yaw distribution of samples",
        type=bool,
        default=False,
        group="augmentation",
        help="Draw samples evenly over head-turn (yaw) angles, so side views, which are rare "
        "in most facesets, are learnt as well as frontal ones instead of staying blurry.",
    ),
    Option(
        name="blur_out_mask",
        label="Blur out mask",
        type=bool,
        default=False,
        group="augmentation",
        help="Blur the background just outside the face mask in training samples, so what "
        "surrounds the face matters less to the model. Needs accurate XSeg masks in both "
        "facesets.",
    ),
    Option(
        name="models_opt_on_gpu",
        label="Place models and optimizer on GPU",
        type=bool,
        default=True,
        group="training",
        help="In DeepFaceLab, n kept the weights and optimizer state in system memory to free "
        "GPU memory. dfl keeps them on the training device on every backend (TensorFlow, JAX, "
        "torch), so this answer is stored for DFL users but changes nothing: neither the "
        "results nor where the variables live. To fit a bigger model, lower the batch size, "
        "resolution or dims.",
    ),
    Option(
        name="adabelief",
        label="Use AdaBelief optimizer?",
        type=bool,
        default=True,
        group="training",
        help="y trains with AdaBelief, n with RMSprop (learning rate 5e-5 either way). "
        "AdaBelief usually reaches a better, more general result and keeps two state tensors "
        "per weight instead of one, so it needs more memory.",
    ),
    Option(
        name="lr_dropout",
        label="Use learning rate dropout",
        type=str,
        default="n",
        choices=LR_DROPOUT_CHOICES,
        group="training",
        help="Learning-rate dropout: each step only a random 30% of every weight is updated, "
        "and the learning rate swings on a 500-iteration cosine. Turn it on late in training "
        "for a sharper face with less shimmer, before switching random warp off and before "
        "using GAN. y = on; n = off; cpu = on as well: DeepFaceLab drew the random masks in "
        "system memory to save GPU memory, while dfl draws them on the training device on "
        "every backend, so cpu and y train the same.",
    ),
    Option(
        name="random_warp",
        label="Enable random warp of samples",
        type=bool,
        default=True,
        group="augmentation",
        help="Randomly warp the input faces so the model learns expressions rather than "
        "copying pixels. Keep it on for most of the training; switching it off near the end "
        "sharpens the detail.",
    ),
    Option(
        name="random_hsv_power",
        label="Random hue/saturation/light intensity",
        type=float,
        default=0.0,
        range=(0.0, 0.3),
        group="augmentation",
        hint="0.0 .. 0.3",
        help="Randomly shift hue, saturation and brightness of the src input faces (not the "
        "targets) by up to this amount, which keeps the face colour steadier in the result. "
        "Needs a src faceset with varied lighting; 0.05 is typical, 0 turns it off.",
    ),
    Option(
        name="gan_power",
        label="GAN power",
        type=float,
        default=0.0,
        range=(0.0, 5.0),
        group="gan",
        hint="0.0 .. 5.0",
        help="Strength of an adversarial (GAN) loss that adds fine skin detail. Start it only "
        "once the face is well trained, with lr_dropout on and random warp off, and keep it "
        "on from then on. It can add artefacts; 0.1 is typical, 0 turns it off.",
    ),
    Option(
        name="gan_patch_size",
        label="GAN patch size",
        type=int,
        default=gan_patch_default,
        range=(3, 640),
        when=gan_on,
        group="gan",
        help="Size in pixels of the patches the GAN's discriminator judges. Bigger patches "
        "give better quality and need more memory; resolution / 8 (the default) is typical. "
        "Changing it starts the discriminator afresh.",
    ),
    Option(
        name="gan_dims",
        label="GAN dimensions",
        type=int,
        default=16,
        range=(4, 512),
        when=gan_on,
        group="gan",
        help="Channel width of the GAN's discriminator; 16 is typical. Changing it starts the "
        "discriminator afresh.",
    ),
    Option(
        name="true_face_power",
        label="'True face' power.",
        type=float,
        default=0.0,
        range=(0.0, 1.0),
        when=is_df,
        validate=validate_true_face,
        group="gan",
        hint="0.0000 .. 1.0",
        help="Experimental, df archis only: a discriminator on the inter's code pushes the "
        "swapped face toward the src identity. 0.01 is typical; higher values can distort the "
        "face. 0 turns it off.",
    ),
    Option(
        name="face_style_power",
        label="Face style power",
        type=float,
        default=0.0,
        range=(0.0, 100.0),
        group="loss",
        hint="0.0..100.0",
        help="Teach the swapped face the colours of the dst face inside the mask, so skin tone "
        "and lighting match dst. Start very low (about 0.001) and only after some 10k "
        "iterations; higher values risk a model collapse (make a backup first). 0 = off.",
    ),
    Option(
        name="bg_style_power",
        label="Background style power",
        type=float,
        default=0.0,
        range=(0.0, 100.0),
        group="loss",
        hint="0.0..100.0",
        help="Teach the area outside the face mask from dst, so the swap blends into dst's "
        "surroundings and looks more like dst. Risks a model collapse; 2.0 is typical, "
        "0 = off.",
    ),
    Option(
        name="ct_mode",
        label="Color transfer for src faceset",
        type=str,
        default="none",
        choices=CT_MODES,
        group="augmentation",
        help="Recolour each src sample toward a random dst sample, so the model sees dst-like "
        "skin tones. rct, lct, mkl, idt and sot are different colour-transfer methods; try "
        "them and compare the previews. none = off.",
    ),
    Option(
        name="clipgrad",
        label="Enable gradient clipping",
        type=bool,
        default=False,
        group="training",
        help="Limit the global norm of each step's gradient to 1. Makes a model collapse less "
        "likely, at a small cost in speed.",
    ),
    Option(
        name="pretrain",
        label="Enable pretraining mode",
        type=bool,
        default=False,
        group="training",
        help="Train on a large faceset of many different people (--pretraining-data-dir) to "
        "make a reusable starting point for later models. While on: no random warp, both "
        "flips and uniform yaw on, GAN, lr dropout, HSV and style powers off. Switching it off "
        "restarts the iteration count at 0 and the inter network(s) start afresh.",
    ),
)
OPTIONS = SAEHD_OPTIONS  # docs/design.md: added to COMMON_OPTIONS
FIXED_OPTIONS = tuple(o.name for o in SAEHD_OPTIONS if not o.changeable)
