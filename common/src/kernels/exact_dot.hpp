// The exact dot product of two arrays: the loop behind the `fdot` kernel. Private to the
// built-in kernels (and their tests).
//
// Every element is cut into parts of at most 26 significant bits (Dekker's split; float32 and
// uint8 elements are one part already, an int64 is four), so that the product of two parts is
// exact in a double. A block's products go into a buffer, and the buffer is summed exactly in
// levels as fsum sums float64 (kernels/exact_levels.hpp). So the expansion holds the exact
// sum of the products, whatever the blocks, slices or order.
//
// A block is done element by element instead, each float64 element scaled into [0.5, 1)
// first, when an element is NaN or infinite, a float64 element is too large to split (about
// 2^997 and up: the split gives NaN) or a product is 2^1012 or more. Its products are exact
// too, but for one limit: a product beyond the largest double counts as its IEEE value (+-inf).
// In both ways, a float64 product's bits below 2^-1074, the smallest double, are not kept: each
// product of its parts is rounded to a multiple of 2^-1074 on its own, so where such products
// occur the answer can differ from the correctly rounded one by a few units of 2^-1074. A NaN
// or infinity among the elements gives the products' IEEE sum, as a plain dot does; so does a
// total beyond the largest double.
#pragma once

#include <cstdint>

#include "kernels/exact_sum.hpp"
#include "zwq/dtype.hpp"

namespace zwq::kernels {

// Adds a[0] * b[0] + ... + a[n - 1] * b[n - 1] into `acc`; `a` and `b` hold n elements of their
// dtypes (any two of the five). `isa` must be supported.
void exact_dot(const void* a, DType a_type, const void* b, DType b_type, std::uint64_t n,
               ExactSum& acc, Isa isa);

}  // namespace zwq::kernels
