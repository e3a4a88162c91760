"""R-FCN's training targets and losses in TensorFlow, as Deep Feature Flow computes them.

The reference, msracver/Deep-Feature-Flow (MXNet), trains R-FCN end to end with the
settings of experiments/dff_rfcn/cfgs/resnet_v1_101_flownet_imagenet_vid_rfcn_end2end_ohem.yaml.
Four pieces of it are rebuilt here as graph-safe TensorFlow functions (static shapes,
no Python control flow on tensors, usable in a Keras `train_step`, a tf.function, and
under XLA):

* `anchor_targets`: the RPN's labels and box targets per anchor (lib/rpn/rpn.py,
  assign_anchor, which the reference runs in its data loader dff_rfcn/core/loader.py
  with allowed_border 0 and NORMALIZE_RPN's ANCHOR_MEANS / ANCHOR_STDS);
* `proposal_targets`: the R-FCN head's labels and class-agnostic box targets per RoI
  (dff_rfcn/operator_py/proposal_target.py and dff_rfcn/core/rcnn.py sample_rois, with
  the config's BATCH_ROIS -1: every proposal and every ground-truth box is kept);
* `ohem_select`: online hard example mining (dff_rfcn/operator_py/box_annotator_ohem.py):
  the BATCH_ROIS_OHEM = 128 RoIs of highest loss are kept, the others ignored;
* `rpn_losses`, `rcnn_ohem_losses`, `smooth_l1`: the losses of get_train_symbol in
  dff_rfcn/symbols/resnet_v1_101_flownet_rfcn.py, with its normalisations.

Everything works on one image at a time; the caller loops over a static batch size
(the reference itself runs one image per GPU: TRAIN.BATCH_IMAGES 1). Ground truth comes
padded: boxes [G_max, 4] float32 (x1, y1, x2, y2), pixel-inclusive as in
lib/bbox/bbox_transform.py, labels [G_max] int32 in 1..C, and num_boxes, a scalar int32;
rows at and after num_boxes are padding and never take part. num_boxes = 0 (an image
without objects) is allowed: every anchor / RoI that would be labelled is background and
the box losses are 0. The reference never sees such an image in training
(lib/utils/load_data.py filter_roidb drops images without boxes), so this case is an
extension, not a port.

Losses. MXNet's loss operators define gradients, not values: SoftmaxOutput's gradient
with respect to its input scores is (softmax - one_hot(label)) * grad_scale / n (0 for
an ignored label), and MakeLoss passes grad_scale times the gradient of its input. Each
loss here is the scalar whose gradient is that one: the summed cross-entropy over the
labelled entries divided by the same n, the summed weighted smooth-L1 times grad_scale.
The values are the natural ones to log (mean cross-entropy per labelled entry, ...).
The reference adds the gradients of its 4 GPUs (one image each; rescale_grad 1.0 in
dff_rfcn/train_end2end.py), so the per-image losses are to be summed over a batch, not
averaged, to reproduce its update size.

Arithmetic. The IoU is box_ops.box_iou in float32; the reference's bbox_overlaps runs in
float64 on the same float32 boxes. Thresholds (0.3, 0.7, 0.5), the best-gt choice and the
equal-IoU ties of the gt-argmax rule can therefore differ where two IoUs (or an IoU and a
threshold) are closer than float32 resolution, never otherwise; IoUs of integer boxes
(one division of exact integers) are equal in both wherever they are equal as fractions.

Conventions shared with the rest of keras_video.layers: boxes and anchors in the order
of box_ops.shifted_anchors (row h, column w, anchor a), the RPN's outputs channels-last
as keras_video.layers.proposals.RPNProposals reads them: class scores [H, W, 2 A] with
the A background channels first, then the A foreground ones; box deltas [H, W, 4 A] with
channel 4 a + k holding delta k (dx, dy, dw, dh) of anchor a.
"""

import tensorflow as tf

from keras_video.layers import box_ops

# TRAIN settings of the config (see the module docstring).
RPN_BATCH_SIZE = 256
RPN_FG_FRACTION = 0.5
RPN_POSITIVE_OVERLAP = 0.7
RPN_NEGATIVE_OVERLAP = 0.3
RPN_CLOBBER_POSITIVES = False
RPN_BBOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
ANCHOR_MEANS = (0.0, 0.0, 0.0, 0.0)
ANCHOR_STDS = (0.1, 0.1, 0.4, 0.4)
FG_THRESH = 0.5  # BG_THRESH_HI is the same 0.5 and BG_THRESH_LO 0.0
BBOX_MEANS = (0.0, 0.0, 0.0, 0.0)
BBOX_STDS = (0.1, 0.1, 0.2, 0.2)
BBOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
BATCH_ROIS_OHEM = 128


def smooth_l1(x, sigma=1.0):
    """MXNet's mx.sym.smooth_l1(x, scalar=sigma), elementwise:
    0.5 (sigma x)^2 where |x| < 1 / sigma^2, |x| - 0.5 / sigma^2 elsewhere.

    sigma is the reference's `scalar`: 1.0 for every loss of the config (NORMALIZE_RPN
    makes the RPN use 1.0 instead of 3.0, resnet_v1_101_flownet_rfcn.py). Its gradient
    is sigma^2 x inside and sign(x) outside, as MXNet's smooth_l1 backward.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    sigma2 = float(sigma) ** 2
    absolute = tf.abs(x)
    return tf.where(absolute < 1.0 / sigma2, 0.5 * sigma2 * tf.square(x), absolute - 0.5 / sigma2)


def _first_argmax(values, axis):
    """Index of the first maximum along `axis` (NumPy's argmax; tf.argmax does not
    promise which of equal maxima it returns), int32."""
    size = tf.shape(values)[axis]
    shape = [1, 1]
    shape[axis] = -1
    index = tf.reshape(tf.range(size), shape)
    is_max = values >= tf.reduce_max(values, axis=axis, keepdims=True)
    return tf.reduce_min(tf.where(is_max, index, size), axis=axis)


def _uniform(shape, seed, rng):
    """Uniform [0, 1) draws: stateless from `seed`, else from the Generator `rng`, else
    from the stateful tf.random.uniform."""
    if seed is not None:
        return tf.random.stateless_uniform(shape, seed=seed)
    if rng is not None:
        return rng.uniform(shape)
    return tf.random.uniform(shape)


def _keep_random(candidates, limit, uniform):
    """`candidates` [N] bool reduced to a uniformly random subset of at most `limit`
    entries: the candidates of the `limit` smallest uniform keys. This is the
    distribution of the reference's npr.choice(candidates, size=count - limit,
    replace=False) of the entries to disable (lib/rpn/rpn.py)."""
    keys = tf.where(candidates, uniform, 2.0)  # non-candidates sort last
    rank = tf.math.invert_permutation(tf.argsort(keys, stable=True))
    return candidates & (rank < limit)


def _valid_gt(gt_boxes, num_boxes):
    """(boxes [G, 4] float32, valid [G] bool): padding rows replaced by a harmless box,
    so no NaN enters an encoding that a tf.where later drops."""
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    valid = tf.range(tf.shape(gt_boxes)[0]) < tf.cast(num_boxes, tf.int32)
    safe = tf.where(valid[:, None], gt_boxes, tf.constant([0.0, 0.0, 15.0, 15.0]))
    return safe, valid


def anchor_targets(anchors, gt_boxes, gt_labels, num_boxes, image_height, image_width,
                   seed=None, rng=None, allowed_border=0, batch_size=RPN_BATCH_SIZE,
                   fg_fraction=RPN_FG_FRACTION, positive_overlap=RPN_POSITIVE_OVERLAP,
                   negative_overlap=RPN_NEGATIVE_OVERLAP,
                   clobber_positives=RPN_CLOBBER_POSITIVES, means=ANCHOR_MEANS,
                   stds=ANCHOR_STDS, bbox_weights=RPN_BBOX_WEIGHTS):
    """The RPN's targets for one image: lib/rpn/rpn.py's assign_anchor.

    anchors: [N, 4] every anchor of the feature map (box_ops.shifted_anchors, the
    order (h, w, a) of the RPN's channels-last outputs; the reference's label order is
    (a, h, w), its channels-first layout). gt_boxes [G_max, 4], gt_labels [G_max] (not
    read: the RPN is class-agnostic and assign_anchor uses the 4 coordinates only;
    taken so both target functions accept the same padded ground truth), num_boxes:
    scalar int32. image_height, image_width: the image's size (im_info).

    Returns (labels [N] int32 in {1 foreground, 0 background, -1 ignored},
    bbox_targets [N, 4] float32, bbox_weights [N, 4] float32), the rules of assign_anchor:

    1. an anchor takes part only if it lies inside the image, x1 >= -allowed_border,
       y1 >= -allowed_border, x2 < width + allowed_border, y2 < height + allowed_border
       (allowed_border 0 in the loader); the others get label -1, target 0, weight 0
       (with no anchor inside, every label is -1: the reference fails there instead);
    2. IoU (box_ops.box_iou, the +1 areas of bbox_overlaps) of the inside anchors with
       the gt boxes; each anchor's gt is its first best one (np.argmax);
    3. with RPN_CLOBBER_POSITIVES false: label 0 where the anchor's best IoU is below
       negative_overlap (0.3), then 1 for every inside anchor that equals some gt's best
       IoU over the inside anchors (ties all count: np.where(overlaps ==
       gt_max_overlaps)), then 1 where the best IoU is >= positive_overlap (0.7); the
       rest stay -1. (clobber_positives=True applies the 0 last, as the reference.)
       Faithful to the reference, a gt that no inside anchor overlaps has best IoU 0,
       and then every inside anchor with IoU 0 to it is labelled 1 by the rule above
       (then subsampled in step 4);
    4. without gt boxes: every inside anchor is 0;
    5. subsampling: above int(fg_fraction * batch_size) = 128 foreground anchors, a
       uniformly random subset of that many stays 1 and the others become -1; then
       above batch_size - (number of 1s) background anchors, a random subset of that
       many stays 0 and the others become -1;
    6. targets: bbox_transform (box_ops.encode_boxes) of every inside anchor to its gt,
       normalised (target - means) / stds (NORMALIZE_RPN with ANCHOR_MEANS / ANCHOR_STDS,
       the loader's normalize_target); 0 without gt boxes; weights bbox_weights
       (RPN_BBOX_WEIGHTS, all 1) on the anchors labelled 1 after subsampling, 0 elsewhere.

    Randomness (step 5): `seed`, an int32/int64 tensor of shape [2], draws with
    tf.random.stateless_uniform, so the same seed gives the same subsets (XLA-safe;
    derive it per step and per image, e.g. tf.stack([step, image_index])); else `rng`,
    a tf.random.Generator; else the stateful tf.random.uniform (seeded by the global
    and op seeds). The reference draws with NumPy's global generator: the distribution
    of the kept subsets is the same, the draws are not.
    """
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    gt_boxes, gt_valid = _valid_gt(gt_boxes, num_boxes)
    del gt_labels  # class-agnostic (see the docstring)
    height = tf.cast(image_height, tf.float32)
    width = tf.cast(image_width, tf.float32)
    border = float(allowed_border)
    inside = ((anchors[:, 0] >= -border) & (anchors[:, 1] >= -border)
              & (anchors[:, 2] < width + border) & (anchors[:, 3] < height + border))
    has_gt = tf.reduce_any(gt_valid)

    # IoU of the inside anchors with the real gt boxes; -1 elsewhere, so that neither an
    # outside anchor nor a padding box wins a maximum.
    usable = inside[:, None] & gt_valid[None, :]
    overlaps = tf.where(usable, box_ops.box_iou(anchors, gt_boxes), -1.0)  # [N, G]
    argmax_overlaps = _first_argmax(overlaps, axis=1)  # [N]
    max_overlaps = tf.reduce_max(overlaps, axis=1)
    gt_max_overlaps = tf.reduce_max(overlaps, axis=0, keepdims=True)  # [1, G]
    gt_argmax = tf.reduce_any(usable & (overlaps == gt_max_overlaps), axis=1)

    negative = max_overlaps < negative_overlap
    positive = gt_argmax | (max_overlaps >= positive_overlap)
    if clobber_positives:
        labels = tf.where(negative, 0, tf.where(positive, 1, -1))
    else:
        labels = tf.where(positive, 1, tf.where(negative, 0, -1))
    labels = tf.where(has_gt, labels, 0)
    labels = tf.where(inside, labels, -1)

    # Subsampling.
    uniform = _uniform([2, tf.shape(anchors)[0]], seed, rng)
    num_fg = int(fg_fraction * batch_size)
    foreground = _keep_random(labels == 1, num_fg, uniform[0])
    labels = tf.where((labels == 1) & ~foreground, -1, labels)
    num_bg = batch_size - tf.reduce_sum(tf.cast(foreground, tf.int32))
    background = _keep_random(labels == 0, num_bg, uniform[1])
    labels = tf.where((labels == 0) & ~background, -1, labels)

    matched = tf.gather(gt_boxes, argmax_overlaps)
    targets = tf.where(has_gt, box_ops.encode_boxes(anchors, matched), 0.0)
    targets = (targets - tf.constant(means, tf.float32)) / tf.constant(stds, tf.float32)
    targets = tf.where(inside[:, None], targets, 0.0)
    weights = tf.where((labels == 1)[:, None], tf.constant(bbox_weights, tf.float32), 0.0)
    return tf.cast(labels, tf.int32), targets, weights


def proposal_targets(rois, gt_boxes, gt_labels, num_boxes, num_classes, class_agnostic=True,
                     fg_thresh=FG_THRESH, means=BBOX_MEANS, stds=BBOX_STDS,
                     bbox_weights=BBOX_WEIGHTS):
    """The R-FCN head's targets for one image: proposal_target.py with BATCH_ROIS -1 and
    rcnn.py's sample_rois and bbox_regression.py's expand_bbox_regression_targets.

    rois: [R, 4] the image's proposals (x1, y1, x2, y2; RPNProposals' rows without the
    batch column). gt_boxes [G_max, 4], gt_labels [G_max] int32 in 1..C, num_boxes:
    scalar int32. num_classes: C + 1, background included (the config's NUM_CLASSES 31;
    read only when class_agnostic is False).
    class_agnostic: CLASS_AGNOSTIC (true in the config): 2 regression classes.

    Returns, all with R + G_max rows:
    (rois [R + G_max, 4], labels [R + G_max] int32, bbox_targets [R + G_max, 4 K],
    bbox_weights [R + G_max, 4 K], valid [R + G_max] bool), K = 2 class-agnostic, else
    num_classes. The rules:

    1. the candidates are the R proposals followed by the gt boxes themselves
       (proposal_target.py: "Include ground-truth boxes in the set of candidate rois");
       only the first num_boxes gt rows are real: the padding rows have valid False,
       label -1, target and weight 0, and their box is set to (0, 0, 0, 0) so that a
       pooling over them reads finite numbers;
    2. each candidate's gt is its first best by IoU (bbox_overlaps, np.argmax), its
       label that gt's class if the IoU is >= fg_thresh (FG_THRESH 0.5), else 0
       (background: BG_THRESH_HI 0.5, BG_THRESH_LO 0.0, so every candidate is one or
       the other). Without gt boxes every candidate is background;
    3. BATCH_ROIS -1 sets rois_per_image = fg_rois_per_image = R + G, so no foreground
       or background sampling happens and every candidate is kept, in the reference's
       order: the foreground ones first, then the background ones, each by index (the
       padding rows come last here). So the first R + num_boxes rows equal the
       reference's output row for row;
    4. targets: bbox_transform of each RoI to its gt, normalised (target - means) / stds
       (BBOX_NORMALIZATION_PRECOMPUTED with BBOX_MEANS 0 / BBOX_STDS 0.1, 0.1, 0.2, 0.2);
       expanded to 4 K columns with only the foreground RoIs' slot filled: slot 1
       (columns 4..7) class-agnostic, slot `label` otherwise; weights bbox_weights
       (BBOX_WEIGHTS, all 1) in that slot, 0 elsewhere.

    No gradient flows to rois (the reference's backward is zero).
    """
    rois = tf.stop_gradient(tf.convert_to_tensor(rois, tf.float32))
    gt_boxes, gt_valid = _valid_gt(gt_boxes, num_boxes)
    gt_labels = tf.convert_to_tensor(gt_labels, tf.int32)
    num_rois = tf.shape(rois)[0]
    all_rois = tf.concat([rois, gt_boxes], axis=0)
    valid = tf.concat([tf.ones([num_rois], tf.bool), gt_valid], axis=0)
    has_gt = tf.reduce_any(gt_valid)

    overlaps = tf.where(gt_valid[None, :], box_ops.box_iou(all_rois, gt_boxes), -1.0)
    assignment = _first_argmax(overlaps, axis=1)
    max_overlaps = tf.where(has_gt, tf.reduce_max(overlaps, axis=1), 0.0)
    foreground = valid & (max_overlaps >= fg_thresh)
    labels = tf.where(foreground, tf.gather(gt_labels, assignment), 0)
    labels = tf.where(valid, labels, -1)

    matched = tf.where(foreground[:, None], tf.gather(gt_boxes, assignment), all_rois)
    targets = box_ops.encode_boxes(all_rois, matched, means, stds)
    regression_classes = 2 if class_agnostic else int(num_classes)
    slot = tf.ones_like(labels) if class_agnostic else tf.maximum(labels, 0)
    in_slot = tf.one_hot(slot, regression_classes, on_value=True, off_value=False,
                         dtype=tf.bool) & foreground[:, None]  # [R + G, K]
    in_slot = tf.repeat(in_slot, 4, axis=1)
    bbox_targets = tf.where(in_slot, tf.tile(targets, [1, regression_classes]), 0.0)
    weights = tf.where(in_slot, tf.tile(tf.constant([bbox_weights], tf.float32),
                                        [1, regression_classes]), 0.0)

    # The reference's row order: foreground, background, then (here) the padding rows.
    key = tf.where(foreground, 0, tf.where(valid, 1, 2))
    order = tf.argsort(key, stable=True)
    all_rois = tf.where(valid[:, None], all_rois, 0.0)
    return (tf.gather(all_rois, order), tf.gather(labels, order), tf.gather(bbox_targets, order),
            tf.gather(weights, order), tf.gather(valid, order))


def _cross_entropy(logits, labels):
    """-log softmax(logits)[label] per row, 0 where label < 0 (ignored)."""
    log_prob = tf.nn.log_softmax(logits, axis=-1)
    picked = tf.gather(log_prob, tf.maximum(labels, 0), batch_dims=1)
    return tf.where(labels >= 0, -picked, 0.0)


def _rpn_pairs(cls):
    """[H, W, 2 A] (bg channels, then fg) or [N, 2] -> [N, 2] (bg, fg) in (h, w, a) order."""
    cls = tf.convert_to_tensor(cls, tf.float32)
    if cls.shape.rank == 2:
        return cls
    anchors = cls.shape[-1] // 2
    return tf.stack([tf.reshape(cls[..., :anchors], [-1]), tf.reshape(cls[..., anchors:], [-1])],
                    axis=-1)


def rpn_losses(cls, bbox_pred, labels, bbox_targets, bbox_weights, from_logits=True,
               batch_size=RPN_BATCH_SIZE, sigma=1.0):
    """(classification loss, box loss) of the RPN for one image, get_train_symbol's
    rpn_cls_prob and rpn_bbox_loss.

    cls: the RPN's class scores [H, W, 2 A] (RPNProposals' layout: A background
    channels, then A foreground) or [N, 2] (background, foreground) per anchor; logits
    with from_logits=True, softmax probabilities otherwise (-log(p + 1e-14) then, the
    form of the reference's metrics). bbox_pred [H, W, 4 A] or [N, 4]. labels,
    bbox_targets, bbox_weights: `anchor_targets`' outputs.

    * classification: SoftmaxOutput(multi_output, use_ignore, ignore_label -1,
      normalization 'valid'): the cross-entropy summed over the anchors labelled 0 or 1,
      divided by their number (1 when there are none: MXNet's valid_cnt == 0 ? 1);
    * box: MakeLoss(bbox_weights * smooth_l1(bbox_pred - bbox_targets, scalar=sigma),
      grad_scale=1 / RPN_BATCH_SIZE): the weighted smooth-L1 summed over every anchor and
      coordinate, divided by batch_size (256), not by the number of positives. sigma is
      1.0 with NORMALIZE_RPN (3.0 without).
    """
    labels = tf.convert_to_tensor(labels, tf.int32)
    pairs = _rpn_pairs(cls)
    if from_logits:
        per_anchor = _cross_entropy(pairs, labels)
    else:
        picked = tf.gather(pairs, tf.maximum(labels, 0), batch_dims=1)
        per_anchor = tf.where(labels >= 0, -tf.math.log(picked + 1e-14), 0.0)
    count = tf.reduce_sum(tf.cast(labels >= 0, tf.float32))
    cls_loss = tf.reduce_sum(per_anchor) / tf.maximum(count, 1.0)
    deltas = tf.reshape(tf.cast(bbox_pred, tf.float32), [-1, 4])
    difference = deltas - tf.cast(bbox_targets, tf.float32)
    box = tf.cast(bbox_weights, tf.float32) * smooth_l1(difference, sigma)
    return cls_loss, tf.reduce_sum(box) / float(batch_size)


def ohem_select(cls_score, bbox_pred, labels, bbox_targets, bbox_weights, valid=None,
                roi_per_img=BATCH_ROIS_OHEM, sigma=1.0):
    """(labels_ohem [R] int32, bbox_weights_ohem [R, 4 K]): box_annotator_ohem.py's
    BoxAnnotatorOHEM for one image.

    Per RoI, loss = -log(softmax(cls_score)[label] + 1e-14) + sum over the 4 K columns of
    bbox_weights * smooth_l1(bbox_pred - bbox_targets, scalar=sigma = 1.0); the
    roi_per_img (BATCH_ROIS_OHEM 128) RoIs of highest loss keep their label and
    weights, every other RoI gets label -1 and weight 0. Rows with valid False (the
    padding rows of `proposal_targets`) or a negative label never count as
    candidates. Equal losses are taken lowest index first (tf.math.top_k; the
    reference's np.argsort()[::-1] leaves their order to NumPy's quicksort). The
    selection carries no gradient (the operator's backward is zero).
    """
    cls_score = tf.stop_gradient(tf.cast(cls_score, tf.float32))
    bbox_pred = tf.stop_gradient(tf.cast(bbox_pred, tf.float32))
    labels = tf.convert_to_tensor(labels, tf.int32)
    bbox_targets = tf.cast(bbox_targets, tf.float32)
    bbox_weights = tf.cast(bbox_weights, tf.float32)
    candidate = labels >= 0
    if valid is not None:
        candidate &= tf.convert_to_tensor(valid, tf.bool)
    prob = tf.nn.softmax(cls_score, axis=-1) + 1e-14
    loss_cls = -tf.math.log(tf.gather(prob, tf.maximum(labels, 0), batch_dims=1))
    loss_box = tf.reduce_sum(bbox_weights * smooth_l1(bbox_pred - bbox_targets, sigma), axis=1)
    loss = tf.where(candidate, loss_cls + loss_box, -float("inf"))
    num_rois = cls_score.shape[0]
    if num_rois is not None:
        k = min(int(roi_per_img), num_rois)
    else:
        k = tf.minimum(int(roi_per_img), tf.shape(loss)[0])
    _, top = tf.math.top_k(loss, k=k)
    hard = (tf.scatter_nd(top[:, None], tf.ones_like(top), tf.shape(labels)) > 0) & candidate
    return tf.where(hard, labels, -1), tf.where(hard[:, None], bbox_weights, 0.0)


def rcnn_ohem_losses(cls_score, bbox_pred, labels, bbox_targets, bbox_weights, valid=None,
                     roi_per_img=BATCH_ROIS_OHEM, sigma=1.0):
    """(classification loss, box loss) of the R-FCN head for one image with OHEM,
    get_train_symbol's cls_prob and bbox_loss with ENABLE_OHEM.

    cls_score: [R, C + 1] logits (the position-sensitive scores averaged over the 7 x 7
    bins), bbox_pred: [R, 4 K] (K = 2 class-agnostic); labels, bbox_targets,
    bbox_weights, valid: `proposal_targets`' outputs. `ohem_select` keeps the 128
    hardest RoIs, then

    * classification: SoftmaxOutput(labels_ohem, use_ignore, ignore_label -1,
      normalization 'valid'): the cross-entropy summed over the kept RoIs divided by
      their number, min(roi_per_img, candidates) (1 when there are none);
    * box: MakeLoss(bbox_weights_ohem * smooth_l1(bbox_pred - bbox_targets, scalar=1.0),
      grad_scale=1 / BATCH_ROIS_OHEM): the weighted smooth-L1 summed over the kept RoIs'
      columns, divided by roi_per_img (128) whatever the number of foreground RoIs.

    Gradients reach cls_score and bbox_pred for the kept RoIs only (and bbox_pred only
    where their weights are non-zero).
    """
    labels_ohem, weights_ohem = ohem_select(cls_score, bbox_pred, labels, bbox_targets,
                                            bbox_weights, valid, roi_per_img, sigma)
    per_roi = _cross_entropy(tf.cast(cls_score, tf.float32), labels_ohem)
    count = tf.reduce_sum(tf.cast(labels_ohem >= 0, tf.float32))
    cls_loss = tf.reduce_sum(per_roi) / tf.maximum(count, 1.0)
    difference = tf.cast(bbox_pred, tf.float32) - tf.cast(bbox_targets, tf.float32)
    box = weights_ohem * smooth_l1(difference, sigma)
    return cls_loss, tf.reduce_sum(box) / float(roi_per_img)
