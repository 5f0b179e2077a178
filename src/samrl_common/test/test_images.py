"""Image message <-> array conversions and their checks."""

import numpy as np
import pytest

from samrl_common.images import ImageError, array_to_image, depth_array_m, image_to_array, rgb_array


def test_round_trips():
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    assert np.array_equal(image_to_array(array_to_image(rgb, 'rgb8')), rgb)
    assert np.array_equal(rgb_array(array_to_image(rgb[..., ::-1], 'bgr8')), rgb)
    depth = np.full((2, 3), 1234, np.uint16)
    assert np.allclose(depth_array_m(array_to_image(depth, '16UC1')), 1.234)
    assert np.allclose(depth_array_m(array_to_image(np.full((2, 3), 0.5, np.float32), '32FC1')), 0.5)


def test_padded_rows_are_read_correctly():
    image = array_to_image(np.arange(6, dtype=np.uint8).reshape(2, 3), 'mono8')
    image.step, image.data = 4, bytes([0, 1, 2, 99, 3, 4, 5, 99])
    assert image_to_array(image).tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize('mutate, message', [
    (lambda i: setattr(i, 'encoding', 'yuv422'), 'unsupported encoding'),
    (lambda i: setattr(i, 'data', i.data[:-1]), 'do not fit'),
    (lambda i: setattr(i, 'step', 1), 'do not fit'),
    (lambda i: setattr(i, 'width', 0), 'no pixels'),
])
def test_bad_images_are_refused(mutate, message):
    image = array_to_image(np.zeros((2, 3, 3), np.uint8), 'rgb8')
    mutate(image)
    with pytest.raises(ImageError, match=message):
        image_to_array(image)


def test_wrong_kind_of_image_is_named():
    with pytest.raises(ImageError, match='expected depth'):
        depth_array_m(array_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb8'))
