"""How a decoded image becomes a training example: alpha composited on a
background, centre-cropped to a square, resized with a named antialiased
method. Image folders and TFDS's variable-size datasets (celeb_a,
lsun/bedroom) share it, so the same picture gives the same pixels from both.

    options = ImageOptions(size=64, background="white", resize="bicubic")
    array = to_array(pil_image, options, colour=True)   # uint8 [64, 64, 3]
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from gan_jax.errors import ConfigError

# PIL's filters widen with the scale factor when they shrink an image, so all
# but "nearest" are antialiased. "bicubic" is clean-fid's choice (Parmar et al.
# 2022): the one whose FID does not depend on the library that resized.
RESIZE_METHODS = {
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "nearest": Image.Resampling.NEAREST,
}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0),
               "grey": (128, 128, 128)}
# DCGAN's size for faces and bedrooms (Radford et al. 2015): TFDS datasets
# whose images are not all square and of one size get it unless --image_size.
DCGAN_IMAGE_SIZE = 64
# PIL modes that hold no colour.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L",
                        "F"})


def parse_background(spec: str) -> Tuple[int, int, int]:
  """'white', 'black', 'grey' or '#rrggbb' -> (r, g, b) in 0..255."""
  if spec in BACKGROUNDS:
    return BACKGROUNDS[spec]
  hex_digits = spec[1:] if spec.startswith("#") else ""
  if len(hex_digits) == 6:
    try:
      return tuple(int(hex_digits[i:i + 2], 16) for i in (0, 2, 4))
    except ValueError:
      pass
  raise ConfigError(f"--background={spec!r} is not a colour: use "
                    f"{', '.join(BACKGROUNDS)} or #rrggbb (e.g. #ff8800).")


@dataclasses.dataclass(frozen=True)
class ImageOptions:
  """What every image is turned into. `size` None keeps the native size."""
  size: Optional[int] = None
  background: str = "white"
  resize: str = "bicubic"

  def validate(self) -> "ImageOptions":
    if self.size is not None and self.size < 1:
      raise ConfigError(f"--image_size must be positive, got {self.size}.")
    if self.resize not in RESIZE_METHODS:
      raise ConfigError(f"--resize={self.resize!r}: choose one of "
                        f"{', '.join(RESIZE_METHODS)}.")
    parse_background(self.background)
    return self


def has_alpha(image: Image.Image) -> bool:
  return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
      "transparency" in image.info)


def is_grey(image: Image.Image) -> bool:
  return image.mode in GREY_MODES


def center_crop(image: Image.Image) -> Image.Image:
  """The largest centred square."""
  width, height = image.size
  side = min(width, height)
  left, top = (width - side) // 2, (height - side) // 2
  return image.crop((left, top, left + side, top + side))


def to_array(image: Image.Image, options: ImageOptions,
             colour: bool) -> np.ndarray:
  """uint8 [H, W, 3 if colour else 1]: alpha composited on the background
  first (so the resize never mixes in the colour of transparent pixels),
  then centre-cropped and resized when `options.size` is set."""
  if has_alpha(image):
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size,
                           parse_background(options.background) + (255,))
    image = Image.alpha_composite(background, rgba)
  image = image.convert("RGB" if colour else "L")
  if options.size is not None and image.size != (options.size,) * 2:
    image = center_crop(image).resize((options.size, options.size),
                                      RESIZE_METHODS[options.resize])
  array = np.asarray(image, np.uint8)
  return array if colour else array[..., None]


def resize_array(pixels: np.ndarray, options: ImageOptions) -> np.ndarray:
  """`to_array` for a decoded uint8 [H, W, C] array (C = 1, 3 or 4)."""
  channels = pixels.shape[-1]
  mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
  image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
  return to_array(image, options, colour=channels != 1)
