"""WikiTableQuestions (CC BY-SA 4.0): the release reader, the environment and the official scorer."""
