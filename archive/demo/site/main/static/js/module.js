// Tidewatch Notes - tide helper module
export function feetToMetres(feet) {
  return Math.round(feet * 0.3048 * 100) / 100;
}

export function isMinusTide(heightFeet) {
  return heightFeet < 0;
}

export function describeTide(heightFeet) {
  if (isMinusTide(heightFeet)) {
    return "minus tide (" + feetToMetres(heightFeet) + " m): good pooling";
  }
  return "tide at " + feetToMetres(heightFeet) + " m";
}
