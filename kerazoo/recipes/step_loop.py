"""A model's training step looped over the batches of one call, their
number an argument of the traced graph (`StepLoop`)."""

import tensorflow as tf

from kerazoo._keras_internals import reduce_step_outputs


class StepLoop:
    """`model.train_function` for a fit that reads every epoch from one
    endless stream (`kerazoo.data.pipeline.all_epochs`): each call runs the
    model's `train_step` on the stream's next batches, as many as Keras'
    `steps_per_execution` gives a call, and at an epoch's end only those
    left in the epoch (35 steps at 32 a call: a call of 32, then one of 3),
    so that no call reads the next epoch's batches.

    Keras' own loop traces `steps_per_execution` into its graph. A model
    kept for the stages of other seeds (`Run.reuse`), whose epochs have
    other numbers of steps, was then traced again, 0.4 s a stage on the
    digits convnet (8 of the 45 stages of LUCIR's main job). Here the
    number of steps is a tensor argument: one trace serves every stage.
    The arithmetic is Keras' loop's: `train_step` through the model's
    distribution strategy on the same batches in the same order, and the
    last step's logs returned (a test compares the weights bit for bit).

    Args:
        model: a compiled Keras model.

    Example:

    ```python
    import keras
    import numpy as np
    import tensorflow as tf
    from kerazoo.recipes.step_loop import StepLoop

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((10, 4), "float32")
    stream = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(2).repeat()
    loop = StepLoop(model)
    loop.start(steps_per_epoch=5, steps_per_call=3)  # calls of 3 and 2 steps
    model.train_function, model.steps_per_execution = loop, 3
    model.fit(stream, epochs=2, steps_per_epoch=5, verbose=0)
    ```
    """

    def __init__(self, model):
        strategy = model.distribute_strategy

        @tf.autograph.experimental.do_not_convert
        def one_step(batch):
            return reduce_step_outputs(strategy.run(model.train_step, args=(batch,)), strategy)

        # As Keras traces its step: without AutoGraph (which would convert
        # every function the step calls, 1.3 s at the first trace of a
        # process), with XLA when the model is compiled for it.
        step = tf.function(one_step, jit_compile=model.jit_compile, reduce_retracing=True)

        @tf.autograph.experimental.do_not_convert
        def steps(iterator, count):
            # The loop carries the logs, so that the step is in the graph
            # once (a second copy doubled Grappler's work at the first call).
            outputs = step.get_concrete_function(iterator.element_spec).structured_outputs
            logs = tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype), outputs)
            # One step at a time (parallel_iterations=1): each reads the
            # variables the one before updated, and the stream in order.
            _, logs = tf.while_loop(
                lambda done, _: done < count,
                lambda done, _: (done + 1, step(next(iterator))),
                (tf.constant(0), logs),
                parallel_iterations=1,
            )
            return logs

        self._steps = tf.function(steps, reduce_retracing=True)
        self._calls = []

    def start(self, steps_per_epoch, steps_per_call):
        """Set the steps of the calls of each epoch of the coming fit, which
        starts at an epoch's first batch (a fresh or resumed fit)."""
        sizes = [min(steps_per_call, steps_per_epoch - s) for s in range(0, steps_per_epoch, steps_per_call)]
        self._calls = [tf.constant(n) for n in sizes]
        self._next = 0

    def __call__(self, iterator):
        count = self._calls[self._next]
        self._next = (self._next + 1) % len(self._calls)
        return self._steps(iterator, count)
