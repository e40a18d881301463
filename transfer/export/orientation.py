"""A photo's EXIF orientation, read and applied inside a TensorFlow graph, so that a served
model sees a phone's portrait photo upright, as the training import (Pillow's exif_transpose)
and `classify` do.

The tag lives in a JPEG's APP1 segment: "Exif\\0\\0", then a TIFF header (byte order "II" or
"MM", 42, the offset of IFD0), then IFD0's entries of 12 bytes each (tag, type, count, value);
tag 0x0112 holds the orientation, 1 to 8. Other formats, and JPEGs without a readable tag,
are upright (1).
"""

import tensorflow as tf

ORIENTATION_TAG = 0x0112
APP1, START_OF_SCAN = 0xE1, 0xDA
EXIF_HEADER = b"Exif\x00\x00"
MAX_ENTRIES = 256  # IFD0 entries looked at; a camera writes a dozen or two


def _bytes_at(data: tf.Tensor, position: tf.Tensor, count: int) -> tf.Tensor:
    """`count` bytes of `data` from `position` as int64, zeros past its end."""
    length = tf.cast(tf.strings.length(data), tf.int64)
    start = tf.clip_by_value(position, 0, length)
    raw = tf.io.decode_raw(tf.strings.substr(data, start, count), tf.uint8)
    return tf.pad(tf.cast(raw, tf.int64), [[0, count - tf.shape(raw, out_type=tf.int64)[0]]])


def _exif_start(data: tf.Tensor) -> tf.Tensor:
    """Where the TIFF header of a JPEG's Exif segment starts, or -1: the segments before the
    image data are walked, marker by marker."""
    length = tf.cast(tf.strings.length(data), tf.int64)
    is_jpeg = tf.reduce_all(tf.equal(_bytes_at(data, tf.constant(0, tf.int64), 2), [255, 216]))
    header = tf.constant(list(EXIF_HEADER), tf.int64)

    def walking(position: tf.Tensor, found: tf.Tensor) -> tf.Tensor:
        return tf.logical_and(found < 0, position + 4 <= length)

    def step(position: tf.Tensor, found: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        fields = _bytes_at(data, position, 4)  # 0xFF, the marker, the segment's length
        is_exif = tf.logical_and(
            tf.equal(fields[1], APP1),
            tf.reduce_all(tf.equal(_bytes_at(data, position + 4, len(EXIF_HEADER)), header)),
        )
        ends = tf.logical_or(tf.not_equal(fields[0], 255), tf.equal(fields[1], START_OF_SCAN))
        after = tf.where(ends, length, position + 2 + fields[2] * 256 + fields[3])
        return after, tf.where(is_exif, position + 4 + len(EXIF_HEADER), found)

    start = tf.where(is_jpeg, tf.constant(2, tf.int64), length)
    _, found = tf.while_loop(walking, step, [start, tf.constant(-1, tf.int64)])
    return found


def exif_orientation(data: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation (int64, 1 to 8) of an encoded photo, a scalar string tensor; 1
    when it has none or an invalid one."""
    tiff = _exif_start(data)
    order = _bytes_at(data, tiff, 4)
    big_endian = tf.equal(order[0], ord("M"))
    valid = tf.logical_and(tiff >= 0, tf.equal(order[0], order[1]))
    valid = tf.logical_and(valid, tf.logical_or(big_endian, tf.equal(order[0], ord("I"))))

    def number(raw: tf.Tensor) -> tf.Tensor:  # unsigned, in the header's byte order
        weights = 256 ** tf.range(tf.shape(raw, out_type=tf.int64)[-1], dtype=tf.int64)
        weights = tf.where(big_endian, tf.reverse(weights, [0]), weights)
        return tf.reduce_sum(raw * weights, axis=-1)

    ifd = tiff + number(_bytes_at(data, tiff + 4, 4))
    count = tf.minimum(number(_bytes_at(data, ifd, 2)), MAX_ENTRIES)
    entries = tf.reshape(_bytes_at(data, ifd + 2, 12 * MAX_ENTRIES), (MAX_ENTRIES, 12))
    is_tag = tf.logical_and(
        tf.equal(number(entries[:, :2]), ORIENTATION_TAG),
        tf.range(MAX_ENTRIES, dtype=tf.int64) < count,
    )
    values = tf.boolean_mask(number(entries[:, 8:10]), is_tag)
    value = tf.concat([values, [1]], axis=0)[0]
    valid = tf.logical_and(valid, tf.logical_and(value >= 1, value <= 8))
    return tf.where(valid, value, tf.constant(1, tf.int64))


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """An H x W x C image as it is meant to be seen (Pillow's ImageOps.exif_transpose): 5 to 8
    swap the sides (transposed), then 2, 3, 6 and 7 mirror left to right and 3, 4, 7 and 8
    top to bottom."""
    image = tf.cond(orientation >= 5, lambda: tf.transpose(image, [1, 0, 2]), lambda: image)
    mirrored = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
    image = tf.cond(mirrored, lambda: tf.reverse(image, [1]), lambda: image)
    flipped = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
    return tf.cond(flipped, lambda: tf.reverse(image, [0]), lambda: image)
